"""Classic mistakes fail the task tests (tests/tasks/) with a message that points at them.

Each test patches a mistaken implementation onto the package (pytest's monkeypatch), runs the
task test that grades that code, and expects a CheckFailed whose message names the mistake.
The task test modules are loaded afresh here (a private copy, under a small Hypothesis profile),
and their probes run in this process (`InProcess`), where the patches are.
"""
from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
import torch
from hypothesis import HealthCheck, Phase, settings

import scratchnet as sn
from scratchnet import conv, init, upsampling
from scratchnet.coursework.checks import CheckFailed, reporting_crashes
from scratchnet.coursework.student import InProcess, Probes
from scratchnet.coursework.tasks import TASKS, task
from scratchnet.im2col import grouped_matmul, im2col
from scratchnet.optim.adam import advance

TASK_TESTS = Path(__file__).parent / "tasks"
if str(TASK_TESTS) not in sys.path:            # the probes' package, as pytest finds it there
    sys.path.insert(0, str(TASK_TESTS))
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
                          t03=load("test_t04_convolution"), t05=load("test_t06_upsampling"),
                          t06=load("test_t07_optimizers"))
    torch.set_num_threads(previous)


def student(test) -> Probes:
    """The `student` fixture of task test `test` (or of the test whose Hypothesis inner test it
    is): its probes, run here as its task's code."""
    outer = next(f for f in vars(sys.modules[test.__module__]).values()
                 if f is test or getattr(getattr(f, "hypothesis", None), "inner_test", 0) is test)
    mark = next(m.name for m in outer.pytestmark if m.name.count("_") == 1)
    module = test.__module__.removeprefix("mistakes_test_")
    return Probes(InProcess(), task(mark.replace("_", ".")).id, module)


def run(test, **kwargs) -> None:
    """Run task test `test` with its `student` fixture."""
    test(student=student(test), **kwargs)


def failure(test, **kwargs) -> str:
    """The message of the CheckFailed that test(**kwargs) raises."""
    with pytest.raises(CheckFailed) as info:
        test(student=student(test), **kwargs)
    return str(info.value)


def failing_example(test, **kwargs) -> str:
    """The failing example that Hypothesis shows for test(**kwargs) (its note)."""
    with pytest.raises(CheckFailed) as info:
        test(student=student(test), **kwargs)
    return "\n".join(getattr(info.value, "__notes__", []))


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
    assert "with a bias" in message                                # the case shown has one
    assert "bias=True" in failing_example(tasks.t03.test_conv2d_backward)


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
    run(tasks.t01.test_linear_backward)                            # one pass is right
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


# -- MSE gradient scaled wrong: each mistake named, on every shape the test draws --------------
MSE_MISTAKES = [   # reduction, the gradient's factor of (p − t)·grad_output for (N, numel), named
    pytest.param("mean", lambda n, numel: 2, "the division by numel = {numel} is missing",
                 id="mean-no-numel"),
    pytest.param("mean", lambda n, numel: 2 / n,
                 "divided by the batch size N = {n} instead of numel = {numel}", id="mean-batch"),
    pytest.param("mean", lambda n, numel: 1 / numel,
                 "the factor 2 is missing: ∂(p − t)²/∂p = 2·(p − t)", id="mean-no-2"),
    pytest.param("mean", lambda n, numel: 1,
                 "the factor 2 and the division by numel = {numel} are both missing",
                 id="mean-no-2-no-numel"),
    pytest.param("mean", lambda n, numel: 1 / n,
                 "divided by the batch size N = {n} instead of numel = {numel}, and the factor "
                 "2 is missing", id="mean-batch-no-2"),
    pytest.param("mean", lambda n, numel: 2 / numel**2,
                 "divided by numel twice (by numel² = {square})", id="mean-numel-squared"),
    pytest.param("mean", lambda n, numel: 2 * n / numel,
                 "divided by the elements per sample, numel/N = {per_sample}, instead of numel = "
                 "{numel}", id="mean-per-sample"),
    pytest.param("mean", lambda n, numel: 2 / numel / n,
                 "divided by the batch size N = {n} on top of numel = {numel}",
                 id="mean-numel-and-batch"),
    pytest.param("sum", lambda n, numel: 1, "the factor 2 is missing: ∂(p − t)²/∂p = 2·(p − t)",
                 id="sum-no-2"),
    pytest.param("sum", lambda n, numel: 2 / numel,
                 "divided by numel = {numel}: reduction='sum' divides by nothing", id="sum-numel"),
    pytest.param("sum", lambda n, numel: 2 / n,
                 "divided by the batch size N = {n}: reduction='sum' divides by nothing",
                 id="sum-batch"),
    pytest.param("none", lambda n, numel: 1,
                 "the factor 2 is missing: ∂(p − t)²/∂p = 2·(p − t)", id="none-no-2"),
    pytest.param("none", lambda n, numel: 2 / numel,
                 "divided by numel = {numel}: reduction='none' divides by nothing",
                 id="none-numel"),
]


def mse_backward_scaled(factor, upstream: bool = True):
    """An MSELoss.backward that returns factor(N, numel)·(p − t)·grad_output (without
    grad_output unless `upstream`)."""
    def backward(self, grad_output=1.0):
        diff = self.saved["diff"]
        return factor(diff.shape[0], diff.numel()) * diff * (grad_output if upstream else 1.0)
    return backward


@pytest.mark.parametrize("reduction, factor, mistake", MSE_MISTAKES)
def test_mse_gradient_mistake_named(tasks, monkeypatch, reduction, factor, mistake):
    """Every shape of the MSE tests tells the mistakes apart: each gets its own line."""
    monkeypatch.setattr(sn.MSELoss, "backward", mse_backward_scaled(factor))
    t02 = tasks.t02
    tests = [t02.test_mse_gradient] + ([t02.test_mse_default_backward] if reduction != "none"
                                       else [])
    for shape in t02.MSE_SHAPES:
        n, numel = shape[0], math.prod(shape)
        named = mistake.format(n=n, numel=numel, square=numel * numel, per_sample=numel // n)
        for test in tests:
            message = failure(test.hypothesis.inner_test, reduction=reduction, case=(shape, 0))
            head = message.splitlines()[0]
            assert head.endswith(f"× the expected value — {named}"), head
            assert f"prediction of shape {shape}" in head


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_gradient_without_the_upstream_gradient(tasks, monkeypatch, reduction):
    monkeypatch.setattr(sn.MSELoss, "backward", mse_backward_scaled(
        lambda n, numel: 2 / numel if reduction == "mean" else 2, upstream=False))
    run(tasks.t02.test_mse_default_backward, reduction=reduction)      # upstream 1: no difference
    head = failure(tasks.t02.test_mse_gradient, reduction=reduction).splitlines()[0]
    assert "the expected value — grad_output (" in head and head.endswith("is not multiplied in")


def test_mse_gradient_divided_by_the_batch_size(tasks, monkeypatch):
    """Through Hypothesis: the example it shows names the mistake too."""
    monkeypatch.setattr(sn.MSELoss, "backward", mse_backward_scaled(lambda n, numel: 2 / n))
    message = failure(tasks.t02.test_mse_gradient, reduction="mean")
    assert "— divided by the batch size N = " in message and "not the batch size" in message


# -- upsampling backward that assumes a square scale -------------------------------------------
def test_upsampling_backward_assuming_square_scale(tasks, monkeypatch):
    def mistaken(grad, scale):
        n, c, hs, ws = grad.shape
        _, sw = scale                                             # the mistake: s_w for both
        return grad.reshape(n, c, hs // sw, sw, ws // sw, sw).sum((3, 5))

    monkeypatch.setattr(upsampling, "nearest_upsample_backward", mistaken)
    run(tasks.t05.test_nearest_upsample_backward_fixed_cases, case=((3, 2, 4, 3), (2, 2), 2))
    for case in ((2, 3, 3, 2), (2, 3), 0), ((2, 2, 2, 5), (3, 1), 1):
        message = failure(tasks.t05.test_nearest_upsample_backward_fixed_cases, case=case)
        assert "s_h and s_w may differ" in message
    assert "s_h" in failure(tasks.t05.test_nearest_upsample_backward)  # or a crash


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


# -- AMSGrad that divides by √v, not by √ of its running maximum --------------------------------
def adam_update_amsgrad_without_maximum(self, p, grad, state, group):
    beta1, beta2 = group["betas"]
    advance(p, state, amsgrad=True)
    t = state["step"]
    m, v = state["exp_avg"], state["exp_avg_sq"]
    m.lerp_(grad, 1 - beta1)
    v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    denom = v.sqrt().div_((1 - beta2 ** t) ** 0.5).add_(group["eps"])  # the mistake: v, not v_max
    p.addcdiv_(m, denom, value=-group["lr"] / (1 - beta1 ** t))


def test_adam_amsgrad_without_the_running_maximum(tasks, monkeypatch):
    monkeypatch.setattr(sn.Adam, "update_amsgrad", adam_update_amsgrad_without_maximum)
    message = failure(tasks.t06.test_adam_amsgrad, impl="reference",
                      kwargs={"lr": 0.01, "amsgrad": True})
    assert "at step 1" not in message and "√v_max instead of √v" in message


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
    run(tasks.t06.test_sgd, kwargs={"lr": 0.1, "momentum": 0.9})       # no dampening: no difference
    message = failure(tasks.t06.test_sgd, kwargs={"lr": 0.05, "momentum": 0.5, "dampening": 0.3})
    assert "at step 1" in message and "0.7× the expected value" in message
    assert "the first step starts the buffer at the gradient itself" in message


# -- a crash in the student's code: the case and the hint --------------------------------------
def crashing_on_bias_none(correct):
    """conv2d_forward `correct`, but crashing on bias None."""
    def conv2d_forward(x, weight, bias, stride, padding, dilation, groups, impl="fast"):
        y, cols = correct(x, weight, None, stride, padding, dilation, groups, impl)
        return y + bias.view(1, -1, 1, 1), cols                   # the mistake: bias None
    return conv2d_forward


def test_conv2d_forward_crashing_on_bias_none(tasks, monkeypatch):
    monkeypatch.setattr(conv, "conv2d_forward", crashing_on_bias_none(conv.conv2d_forward))
    message = failure(tasks.t03.test_conv2d_forward, impl=None)
    head = message.splitlines()[0]
    assert head.startswith("conv2d_forward(x of shape (") and ", bias=None, stride=(" in head
    assert all(f", {name}=" in head for name in ("padding", "dilation", "groups"))
    assert head.endswith(") raised AttributeError: 'NoneType' object has no attribute 'view'")
    assert "\n  bias is None in this case: use it only when not None" in message
    assert f"\nHint: {task('T04.3').stub_message('conv2d_forward')}" in message


def test_conv2d_forward_with_the_weight_not_transposed(tasks, monkeypatch):
    def mistaken(x, weight, bias, stride, padding, dilation, groups, impl="fast"):
        cols = im2col(x, tuple(weight.shape[2:]), stride, padding, dilation, "reference")
        w = conv.weight_matrices(weight, groups)                   # the mistake: not transposed
        return grouped_matmul(cols, w, groups, bias), cols

    monkeypatch.setattr(conv, "conv2d_forward", mistaken)
    message = failure(tasks.t03.test_conv2d_forward_asymmetric_case, impl=None)
    assert message.startswith("conv2d_forward(x of shape (2, 3, 7, 6), weight of shape "
                              "(4, 3, 3, 2), bias of shape (4), stride=(2, 1), padding=(1, 2), "
                              "dilation=(1, 2), groups=1, impl='fast') raised RuntimeError: "
                              "mat1 and mat2")
    assert "\n  at scratchnet/im2col.py:" in message and ", in grouped_matmul: " in message
    assert "takes each group's weight matrix transposed" in message


def test_linear_forward_crashing_without_bias(tasks, monkeypatch):
    monkeypatch.setattr(sn.Linear, "forward", lambda self, x: x @ self.weight.T + self.bias)
    message = failure(tasks.t01.test_linear_forward_without_bias)
    assert message.startswith("Linear(in_features=4, out_features=3, bias=False).forward(x of "
                              "shape (5, 4)) raised TypeError: unsupported operand")
    assert "self.bias is None in this case" in message
    assert "\nHint: T01.1 Linear.forward — " in message


def test_exceptions_the_tests_expect_are_left_alone(tasks, monkeypatch):
    """An exception the test itself expects keeps its type; a blank task's stub its message."""
    with reporting_crashes("T03.1"), pytest.raises(ValueError):
        init.xavier_uniform_(torch.empty(5))
    stub = task("T04.3").stub_message("conv2d_forward")

    def blank(*args, **kwargs):
        raise NotImplementedError(stub)

    monkeypatch.setattr(conv, "conv2d_forward", blank)
    assert failure(tasks.t03.test_conv2d_forward_asymmetric_case, impl=None) == \
        f"NotImplementedError: {stub}"


def test_the_task_tests_report_crashes(tmp_path):
    """pytest on tests/tasks, as `make check` runs it, with conv2d_forward broken by a plugin:
    the report names the case, the line that raised and the hint."""
    (tmp_path / "break_conv2d_forward.py").write_text(
        "from scratchnet import conv\nfrom test_mistakes import crashing_on_bias_none\n\n"
        "conv.conv2d_forward = crashing_on_bias_none(conv.conv2d_forward)\n", encoding="utf-8")
    path = os.pathsep.join([str(tmp_path), str(Path(__file__).parent),
                            os.environ.get("PYTHONPATH", "")])
    test = f"{TASK_TESTS}/test_t04_convolution.py::test_conv2d_forward[default]"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", test, "-p", "break_conv2d_forward", "-p",
         "no:cacheprovider", "-q", "--no-header"], cwd=TASK_TESTS.parents[1], text=True,
        capture_output=True, env={**os.environ, "PYTHONPATH": path}, check=False, timeout=300)
    out = result.stdout
    assert result.returncode == 1 and "1 failed" in out, out + result.stderr
    report = out[out.index("CheckFailed: conv2d_forward(x of shape ("):]
    assert "raised AttributeError: 'NoneType' object has no attribute 'view'" in report, out
    assert "bias=None" in report and "Hint: T04.3 conv2d_forward — " in report, out
