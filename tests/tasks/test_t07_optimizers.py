"""Notebook 07 · Optimizers: T07.1 SGD.update, T07.2 Adam.update and Adam.update_amsgrad, all
through step(). The student's side: probes/t07_optimizers.py.
Reference: torch.optim's SGD and Adam updates on copies of the same parameters and gradients,
float64, several steps; each step's change p_new − p_old is compared.

The reference calls torch.optim.sgd.sgd / torch.optim.adam.adam, the functions torch.optim.SGD
and torch.optim.Adam run in step(): constructing a torch.optim optimizer imports torch._dynamo,
seconds of the suite's time budget."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor
from torch.optim.adam import adam as torch_adam
from torch.optim.sgd import sgd as torch_sgd

from scratchnet.coursework.checks import expect_close
from scratchnet.coursework.references import randn

pytestmark = pytest.mark.T07
TOL = {"rtol": 1e-9, "atol": 1e-12}
STEPS = 4


# The parameters' shapes (a matrix, a vector, …) and a seed for their values and gradients.
problems = st.tuples(st.sampled_from([((3, 4), (4,)), ((2, 3, 2), (5,), (2, 2)), ((4, 2), (1,))]),
                     st.integers(0, 2**31))


def compare_steps(student, optimizer: str, kwargs: dict, impl: str | None,
                  problem: tuple[tuple[tuple[int, ...], ...], int],
                  first_hint: str, later_hint: str,
                  grad_scales: tuple[float, ...] = (1.0,) * STEPS) -> None:
    """Run the student's `optimizer` ("SGD" or "Adam", with **kwargs) and torch's for STEPS steps
    with the same gradients (step t's multiplied by grad_scales[t - 1]); compare every step's
    change of every parameter, and that the gradients are left untouched."""
    shapes, seed = problem
    params = [randn(shape, seed + i) for i, shape in enumerate(shapes)]
    grads = [[scale * randn(shape, seed + 100 * (t + 1) + i) for i, shape in enumerate(shapes)]
             for t, scale in enumerate(grad_scales)]
    name = f"{optimizer}({sgd_id(kwargs)})"
    steps = student.optimizer_steps(optimizer, kwargs, impl, params, grads)
    theirs = [p.clone() for p in params]
    reference = TORCH[optimizer](theirs, **kwargs)
    for t, (step_grads, got) in enumerate(zip(grads, steps), start=1):
        for q, g in zip(theirs, step_grads):
            q.grad = g.clone()
        reference.step()
        for i, (old, new, grad, q, g) in enumerate(zip(got["before"], got["after"], got["grad"],
                                                       theirs, step_grads)):
            what = f"the change of parameter {i} at step {t} of {name}"
            expect_close(new - old, q - old, what, **TOL,
                         hint=first_hint if t == 1 else later_hint)
            expect_close(grad, g, f"p.grad of parameter {i} after step {t}", rtol=0, atol=0,
                         hint="update must not change the gradient in place: grad + wd·p makes "
                              "a new tensor, grad.add_(…) would change p.grad")


class TorchSGD:
    """torch.optim.SGD(params, **kwargs), step for step."""

    def __init__(self, params: list[Tensor], lr: float, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False):
        self.params, self.buffers = params, [None] * len(params)
        self.kwargs = {"lr": lr, "momentum": momentum, "dampening": dampening,
                       "weight_decay": weight_decay, "nesterov": nesterov, "maximize": False}

    def step(self) -> None:
        torch_sgd(self.params, [p.grad for p in self.params], self.buffers,
                  foreach=False, **self.kwargs)


class TorchAdam:
    """torch.optim.Adam(params, **kwargs), step for step."""

    def __init__(self, params: list[Tensor], lr: float, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False):
        self.params = params
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.v_max = [torch.zeros_like(p) for p in params] if amsgrad else []
        self.steps = [torch.tensor(0.0) for _ in params]
        self.kwargs = {"lr": lr, "beta1": betas[0], "beta2": betas[1], "eps": eps,
                       "weight_decay": weight_decay, "amsgrad": amsgrad, "maximize": False}

    def step(self) -> None:
        torch_adam(self.params, [p.grad for p in self.params], self.m, self.v, self.v_max,
                   self.steps, foreach=False, **self.kwargs)


TORCH = {"SGD": TorchSGD, "Adam": TorchAdam}


# -- T07.1 SGD ---------------------------------------------------------------------------------
SGD_CONFIGS = [
    {"lr": 0.1},
    {"lr": 0.1, "momentum": 0.9},
    {"lr": 0.05, "momentum": 0.5, "dampening": 0.3},
    {"lr": 0.1, "momentum": 0.9, "nesterov": True},
    {"lr": 0.1, "weight_decay": 0.1},
    {"lr": 0.01, "momentum": 0.9, "dampening": 0.5, "weight_decay": 0.05},
    {"lr": 0.1, "momentum": 0.5, "nesterov": True, "weight_decay": 0.1},
]
SGD_FIRST_HINT = ("step: p ← p − lr·d in place (p.add_(d, alpha=-lr): the optimizer holds the "
                  "module's own tensors), d = grad + weight_decay·p. With momentum, the first "
                  "step starts the buffer at the gradient itself: b = d (not zeros, not "
                  "(1 − dampening)·d); then d = d + momentum·b with Nesterov, else d = b")
SGD_LATER_HINT = ("from the second step on the momentum buffer, kept in state['momentum_buffer'] "
                  "between steps, becomes b = momentum·b + (1 − dampening)·d; then d = d + "
                  "momentum·b with Nesterov, else d = b; p ← p − lr·d")


def sgd_id(kwargs: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in kwargs.items())


@pytest.mark.T07_1
@pytest.mark.parametrize("kwargs", SGD_CONFIGS, ids=sgd_id)
@given(problem=problems)
def test_sgd(student, kwargs, problem):
    compare_steps(student, "SGD", kwargs, None, problem, SGD_FIRST_HINT, SGD_LATER_HINT)


# -- T07.2 Adam --------------------------------------------------------------------------------
ADAM_CONFIGS = [
    {"lr": 0.01},
    {"lr": 0.1, "betas": (0.5, 0.9)},
    {"lr": 0.01, "eps": 1e-3},
    {"lr": 0.1, "weight_decay": 0.1},
    {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.01},
]
ADAM_FIRST_HINT = ("at step t = 1 Adam moves every parameter by about lr: m and v start at zero, "
                   "so divide them by (1 − β₁ᵗ) and (1 − β₂ᵗ) (the bias correction): m̂ = "
                   "m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ), p ← p − lr·m̂/(√v̂ + ε), in place; t counts "
                   "from 1; g = grad + weight_decay·p")
ADAM_LATER_HINT = ("m = β₁·m + (1 − β₁)·g and v = β₂·v + (1 − β₂)·g² are kept in the state "
                   "between steps (update the state's tensors in place), t grows by one per step, "
                   "and the bias correction uses the current t: m̂ = m/(1 − β₁ᵗ), v̂ = "
                   "v/(1 − β₂ᵗ); p ← p − lr·m̂/(√v̂ + ε)")


@pytest.mark.T07_2
@pytest.mark.parametrize("kwargs", ADAM_CONFIGS, ids=sgd_id)
@given(problem=problems)
def test_adam(student, impl, kwargs, problem):
    compare_steps(student, "Adam", kwargs, impl, problem, ADAM_FIRST_HINT, ADAM_LATER_HINT)


# -- T07.2 Adam.update_amsgrad -----------------------------------------------------------------
AMSGRAD_CONFIGS = [
    {"lr": 0.01, "amsgrad": True},
    {"lr": 0.1, "betas": (0.5, 0.9), "amsgrad": True},
    {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.01, "amsgrad": True},
]
# large gradients, then small ones: v shrinks from step 3 on, and AMSGrad's v_max keeps the peak
AMSGRAD_SCALES = (1.0, 3.0, 0.1, 0.3)
AMSGRAD_FIRST_HINT = ("at step 1 AMSGrad is Adam: v_max = max(0, v) = v. update_amsgrad must do "
                      "what update does (weight decay, m, v, the bias correction, p in place), "
                      "with advance(p, state, amsgrad=True) counting the step")
AMSGRAD_LATER_HINT = ("AMSGrad divides by √v_max instead of √v: v_max = state['max_exp_avg_sq'] "
                      "is the running maximum of v, torch.maximum(v_max, v, out=v_max) after v "
                      "is updated (in place, so that it persists), then p ← p − lr/(1 − β₁ᵗ)·m/"
                      "(√v_max/√(1 − β₂ᵗ) + ε); m and v themselves are updated as in Adam. These "
                      "gradients grow, then shrink: a step that used v here moved too far")


@pytest.mark.T07_2
@pytest.mark.parametrize("kwargs", AMSGRAD_CONFIGS, ids=sgd_id)
@given(problem=problems)
def test_adam_amsgrad(student, impl, kwargs, problem):
    compare_steps(student, "Adam", kwargs, impl, problem, AMSGRAD_FIRST_HINT,
                  AMSGRAD_LATER_HINT, grad_scales=AMSGRAD_SCALES)
