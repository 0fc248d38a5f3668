"""Classic mistakes fail the task tests (tests/tasks/) with a message that points at them.

Each test patches a mistaken implementation onto the package (pytest's monkeypatch), runs the
task test that grades that code, and expects a CheckFailed whose message names the mistake.
The task test modules are loaded afresh here (a private copy, under a small Hypothesis profile).
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
import torch
from hypothesis import HealthCheck, Phase, settings

import scratchnet as sn
from scratchnet import conv, upsampling
from scratchnet.coursework.checks import CheckFailed
from scratchnet.coursework.tasks import TASKS
from scratchnet.optim.adam import advance

TASK_TESTS = Path(__file__).parent / "tasks"
PROFILE = "scratchnet-mistakes"
settings.register_profile(
    PROFILE, max_examples=10, deadline=None, derandomize=True, database=None,
    print_blob=False, report_multiple_bugs=False,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def load(name: str) -> ModuleType:
    """A private copy of tests/tasks/<name>.py, its @given tests built under PROFILE."""
    spec = importlib.util.spec_from_file_location(f"mistakes_{name}", TASK_TESTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module                   # dataclasses look their module up there
    previous = getattr(settings, "_current_profile", None) or "default"
    settings.load_profile(PROFILE)
    try:
        spec.loader.exec_module(module)
    finally:
        settings.load_profile(previous)
    return module


@pytest.fixture(scope="module")
def tasks(request: pytest.FixtureRequest) -> SimpleNamespace:
    """The task test modules (their markers registered first, for --strict-markers)."""
    for name in sorted({f"T{t.number}" for t in TASKS} | {t.grade_id for t in TASKS}):
        request.config.addinivalue_line("markers", f"{name}: a task of the course")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield SimpleNamespace(t01=load("test_t01_modules"), t02=load("test_t02_activations"),
                          t03=load("test_t03_convolution"), t05=load("test_t05_upsampling"),
                          t06=load("test_t06_optimizers"))
    torch.set_num_threads(previous)


def failure(test, **kwargs) -> str:
    """The message of the CheckFailed that test(**kwargs) raises."""
    with pytest.raises(CheckFailed) as info:
        test(**kwargs)
    return str(info.value)


# -- bias gradient as a mean -------------------------------------------------------------------
def linear_backward_bias_mean(self, grad_output):
    x = self.saved["x"]
    g = grad_output.reshape(-1, self.out_features)
    self.accumulate_grad("weight", g.T @ x.reshape(-1, self.in_features))
    if self.bias is not None:
        self.accumulate_grad("bias", g.mean(0))                   # the mistake
    return grad_output @ self.weight


def test_linear_bias_gradient_as_a_mean(tasks, monkeypatch):
    monkeypatch.setattr(sn.Linear, "backward", linear_backward_bias_mean)
    message = failure(tasks.t01.test_linear_backward)
    assert "∂L/∂b" in message and "a mean instead of a sum" in message


def test_conv2d_bias_gradient_as_a_mean(tasks, monkeypatch):
    correct = conv.conv2d_backward

    def mistaken(grad_out, *args, **kwargs):
        dx, dw, _ = correct(grad_out, *args, **kwargs)
        return dx, dw, grad_out.mean((0, 2, 3))                   # the mistake

    monkeypatch.setattr(conv, "conv2d_backward", mistaken)
    message = failure(tasks.t03.test_conv2d_backward)
    assert "∂L/∂b" in message and "a mean instead of a sum" in message


# -- gradients overwritten instead of accumulated ----------------------------------------------
def linear_backward_overwriting(self, grad_output):
    x = self.saved["x"]
    g = grad_output.reshape(-1, self.out_features)
    self.weight.grad = g.T @ x.reshape(-1, self.in_features)      # the mistake: = instead of +=
    if self.bias is not None:
        self.bias.grad = g.sum(0)
    return grad_output @ self.weight


def test_linear_gradients_overwritten(tasks, monkeypatch):
    monkeypatch.setattr(sn.Linear, "backward", linear_backward_overwriting)
    tasks.t01.test_linear_backward()                              # one pass is right
    message = failure(tasks.t01.test_linear_gradients_accumulate)
    assert "added to weight.grad is zero everywhere" in message and "accumulate" in message


# -- Sequential.backward in forward order ------------------------------------------------------
def test_sequential_backward_in_forward_order(tasks, monkeypatch):
    def mistaken(self, grad_output):
        for module in self:                                       # the mistake: not reversed
            grad_output = module.backward(grad_output)
        return grad_output

    monkeypatch.setattr(sn.Sequential, "backward", mistaken)
    message = failure(tasks.t01.test_sequential_backward)
    assert "reverse order" in message


# -- MSE gradient off by the batch factor ------------------------------------------------------
@pytest.mark.parametrize("divisor", ["nothing", "the batch size"])
def test_mse_gradient_scaled_wrong(tasks, monkeypatch, divisor):
    def mistaken(self, grad_output=1.0):
        diff = self.saved["diff"]
        if self.reduction == "none":
            return 2 * diff * grad_output
        scale = 2.0 if divisor == "nothing" else 2.0 / diff.shape[0]  # the mistake: not /numel
        return diff * (scale * grad_output)

    monkeypatch.setattr(sn.MSELoss, "backward", mistaken)
    message = failure(tasks.t02.test_mse_gradient, reduction="mean")
    assert "× the expected value" in message and "numel" in message
    message = failure(tasks.t02.test_mse_default_backward, reduction="mean")
    assert "× the expected value" in message and "not the batch size" in message


# -- upsampling backward that assumes a square scale -------------------------------------------
def test_upsampling_backward_assuming_square_scale(tasks, monkeypatch):
    def mistaken(grad, scale):
        n, c, hs, ws = grad.shape
        _, sw = scale                                             # the mistake: s_w for both
        return grad.reshape(n, c, hs // sw, sw, ws // sw, sw).sum((3, 5))

    monkeypatch.setattr(upsampling, "nearest_upsample_backward", mistaken)
    tasks.t05.test_nearest_upsample_backward_fixed_cases(case=((3, 2, 4, 3), (2, 2), 2))
    for case in ((2, 3, 3, 2), (2, 3), 0), ((2, 2, 2, 5), (3, 1), 1):
        message = failure(tasks.t05.test_nearest_upsample_backward_fixed_cases, case=case)
        assert "s_h and s_w may differ" in message
    assert "s_h" in failure(tasks.t05.test_nearest_upsample_backward)


# -- a Sigmoid that overflows ------------------------------------------------------------------
def naive_sigmoid(self, x):
    return torch.where(x >= 0, 1 / (1 + torch.exp(-x)), torch.exp(x) / (1 + torch.exp(x)))


def naive_sigmoid_derivative(self, x, y):
    return torch.exp(-x) / (1 + torch.exp(-x)) ** 2               # e^{100} = inf: inf/inf


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_sigmoid_nan_for_very_negative_inputs(tasks, monkeypatch, dtype):
    monkeypatch.setattr(sn.Sigmoid, "function", naive_sigmoid)
    monkeypatch.setattr(sn.Sigmoid, "derivative", naive_sigmoid_derivative)
    message = failure(tasks.t02.test_sigmoid_without_overflow, dtype=dtype)
    assert "contains NaN at (" in message and "y·(1 − y)" in message
    assert "NaN" in failure(tasks.t02.test_sigmoid_derivative_from_the_output)


def test_sigmoid_nan_for_very_positive_inputs(tasks, monkeypatch):
    monkeypatch.setattr(sn.Sigmoid, "function", lambda self, x: torch.exp(x) / (1 + torch.exp(x)))
    message = failure(tasks.t02.test_sigmoid_without_overflow, dtype=torch.float32)
    assert message.startswith("σ(x) for x = ") and "contains NaN at (7,)" in message
    assert "e^{−|x|}" in message


# -- Adam without bias correction --------------------------------------------------------------
def adam_update_without_bias_correction(self, p, grad, state, group):
    beta1, beta2 = group["betas"]
    if group["weight_decay"] != 0:
        grad = grad + group["weight_decay"] * p
    advance(p, state)
    m, v = state["exp_avg"], state["exp_avg_sq"]
    m.lerp_(grad, 1 - beta1)
    v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    p.addcdiv_(m, v.sqrt().add_(group["eps"]), value=-group["lr"])  # the mistake: no m̂, v̂


def test_adam_without_bias_correction(tasks, monkeypatch):
    monkeypatch.setattr(sn.Adam, "update", adam_update_without_bias_correction)
    message = failure(tasks.t06.test_adam, impl="reference", kwargs={"lr": 0.01})
    assert "at step 1" in message and "3.162× the expected value" in message
    assert "(the bias correction)" in message


# -- SGD momentum buffer started at zero -------------------------------------------------------
def sgd_update_buffer_from_zero(self, p, grad, state, group):
    d = grad if group["weight_decay"] == 0 else grad + group["weight_decay"] * p
    momentum = group["momentum"]
    if momentum != 0:
        buf = state.setdefault("momentum_buffer", torch.zeros_like(p))  # the mistake
        buf.mul_(momentum).add_(d, alpha=1 - group["dampening"])
        d = d + momentum * buf if group["nesterov"] else buf
    p.add_(d, alpha=-group["lr"])


def test_sgd_momentum_buffer_not_started_at_the_gradient(tasks, monkeypatch):
    monkeypatch.setattr(sn.SGD, "update", sgd_update_buffer_from_zero)
    tasks.t06.test_sgd(kwargs={"lr": 0.1, "momentum": 0.9})       # no dampening: no difference
    message = failure(tasks.t06.test_sgd, kwargs={"lr": 0.05, "momentum": 0.5, "dampening": 0.3})
    assert "at step 1" in message and "0.7× the expected value" in message
    assert "the first step starts the buffer at the gradient itself" in message
