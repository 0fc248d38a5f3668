"""Notebook 02 · Activations and MSE: T02.1 ReLU, T02.2 Sigmoid, T02.3 Tanh, T02.4 MSELoss.
The student's side: probes/t02_activations.py. References: torch (torch.relu/sigmoid/tanh,
F.mse_loss, autograd) in float64."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor

from scratchnet.coursework.checks import expect_close
from scratchnet.coursework.references import randn, torch_grads

pytestmark = pytest.mark.T02
TOL = {"rtol": 1e-10, "atol": 1e-12}
shapes = st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple)


def check_activation(student, layer: str, reference, x: Tensor, g: Tensor, name: str,
                     forward_hint: str, derivative_hint: str, tol: dict, at: str = "") -> None:
    """Forward and backward of the student's `layer` ("ReLU", "Sigmoid", "Tanh") at x (upstream
    gradient g) against torch; `at` describes x in the messages."""
    y_want, (dx_want,) = torch_grads(reference, [x], g)
    got = student.activation(layer, x, g)
    expect_close(got["y"], y_want, f"{name}(x){at}", **tol, hint=forward_hint)
    expect_close(got["dx"], dx_want, f"∂L/∂x of {name} (grad_output · {name}′(x)){at}",
                 **tol, hint=derivative_hint)


# x's shape (any), its scale and a seed
inputs = st.tuples(shapes, st.sampled_from([1.0, 10.0]), st.integers(0, 2**31))


def make_input(case: tuple) -> tuple[Tensor, Tensor]:
    """x of the drawn shape and scale, its first element exactly 0; an upstream gradient g."""
    shape, scale, seed = case
    x = randn(shape, seed) * scale
    x.reshape(-1)[0] = 0.0
    return x, randn(shape, seed + 1)


# -- T02.1 ReLU --------------------------------------------------------------------------------
RELU_HINT = "ReLU(x) = max(0, x), element-wise (x.clamp(min=0))"
RELU_DERIVATIVE_HINT = ("ReLU′ is 1 where x > 0 and 0 elsewhere — 0 at x = 0 too, as in torch; "
                        "from the output: 1 where y > 0")


@pytest.mark.T02_1
@given(case=inputs)
def test_relu(student, case):
    x, g = make_input(case)
    check_activation(student, "ReLU", torch.relu, x, g, "ReLU", RELU_HINT,
                     RELU_DERIVATIVE_HINT, TOL)


@pytest.mark.T02_1
def test_relu_inplace(student):
    """inplace=False leaves x alone; inplace=True overwrites x with the result."""
    x = randn((3, 4), 0)
    got = student.relu_inplace(x.clone())      # run in this process, the probe gets x itself
    expect_close(got["x_after_relu"], x, "x after ReLU() (inplace=False)", rtol=0, atol=0,
                 hint="without inplace, ReLU must return a new tensor: x.clamp(min=0)")
    expect_close(got["x_after_inplace"], torch.relu(x), "x after ReLU(inplace=True)", rtol=0,
                 atol=0, hint="with inplace=True, overwrite x and return it: x.clamp_(min=0)")
    expect_close(got["y"], torch.relu(x), "ReLU(inplace=True)(x)", rtol=0, atol=0,
                 hint="with inplace=True, overwrite x and return it: x.clamp_(min=0)")


# -- T02.2 Sigmoid -----------------------------------------------------------------------------
SIGMOID_HINT = ("σ(x) = 1/(1 + e^{−x}) overflows: e^{−x} is inf for x ≪ 0 (and e^{x}/(1 + e^{x}) "
                "gives inf/inf = NaN for x ≫ 0). Use e = e^{−|x|} ≤ 1 only: 1/(1 + e) where "
                "x ≥ 0, e/(1 + e) where x < 0")
SIGMOID_DERIVATIVE_HINT = ("σ′(x) = σ(x)·(1 − σ(x)) = y·(1 − y), from the saved output y — no "
                           "exponential, so nothing can overflow")
EXTREMES = [-1000.0, -100.0, -30.0, -1.0, 0.0, 1.0, 30.0, 100.0, 1000.0]
AT_EXTREMES = f" for x = {EXTREMES} ({{}})"


@pytest.mark.T02_2
@given(case=inputs)
def test_sigmoid(student, case):
    x, g = make_input(case)
    check_activation(student, "Sigmoid", torch.sigmoid, x, g, "σ", SIGMOID_HINT,
                     SIGMOID_DERIVATIVE_HINT, TOL)


@pytest.mark.T02_2
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_sigmoid_without_overflow(student, dtype):
    """σ and σ′ at ±1000, ±100, ±30: finite, 0 or 1 at the extremes, in float32 and float64."""
    x = torch.tensor(EXTREMES, dtype=dtype)
    g = torch.ones_like(x)
    tol = {"rtol": 1e-6, "atol": torch.finfo(dtype).tiny}
    check_activation(student, "Sigmoid", torch.sigmoid, x, g, "σ",
                     SIGMOID_HINT, SIGMOID_DERIVATIVE_HINT, tol, AT_EXTREMES.format(dtype))


@pytest.mark.T02_2
def test_sigmoid_derivative_from_the_output(student):
    """derivative(x, y) must use y: here x is NaN, so any use of x shows."""
    y = torch.rand(3, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expect_close(student.derivative("Sigmoid", torch.full_like(y, torch.nan), y), y * (1 - y),
                 "σ′ computed by derivative(x, y)", **TOL, hint=SIGMOID_DERIVATIVE_HINT
                 + " (this test passes x = NaN: use only y)")


# -- T02.3 Tanh --------------------------------------------------------------------------------
TANH_HINT = "tanh(x): torch.tanh(x) (it does not overflow)"
TANH_DERIVATIVE_HINT = "tanh′(x) = 1 − tanh(x)² = 1 − y², from the saved output y"


@pytest.mark.T02_3
@given(case=inputs)
def test_tanh(student, case):
    x, g = make_input(case)
    check_activation(student, "Tanh", torch.tanh, x, g, "tanh", TANH_HINT,
                     TANH_DERIVATIVE_HINT, TOL)


@pytest.mark.T02_3
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_tanh_extremes(student, dtype):
    x = torch.tensor(EXTREMES, dtype=dtype)
    g = torch.ones_like(x)
    tol = {"rtol": 1e-6, "atol": torch.finfo(dtype).tiny}
    check_activation(student, "Tanh", torch.tanh, x, g, "tanh", TANH_HINT,
                     TANH_DERIVATIVE_HINT, tol, AT_EXTREMES.format(dtype))


@pytest.mark.T02_3
def test_tanh_derivative_from_the_output(student):
    y = 2 * torch.rand(3, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64) - 1
    expect_close(student.derivative("Tanh", torch.full_like(y, torch.nan), y), 1 - y * y,
                 "tanh′ computed by derivative(x, y)", **TOL,
                 hint=TANH_DERIVATIVE_HINT + " (this test passes x = NaN: use only y)")


# -- T02.4 MSELoss -----------------------------------------------------------------------------
LOSS_HINT = {
    "mean": "the mean of (prediction − target)² over every element: divide the sum by "
            "prediction.numel()",
    "sum": "the sum of (prediction − target)² over every element",
    "none": "(prediction − target)², element-wise, shaped like prediction",
}
GRAD_HINT = {
    "mean": "the gradient is scaled like the loss: 2·(prediction − target)/numel, numel = "
            "prediction.numel() — the number of elements, not the batch size N — times the "
            "upstream gradient grad_output",
    "sum": "2·(prediction − target), times the upstream gradient grad_output (no division)",
    "none": "2·(prediction − target)·grad_output, element-wise (grad_output is shaped like the "
            "loss)",
}


# prediction's shapes (N, …): N ≥ 3 and numel/N ∉ {1, 2, N, 2N}, so that every mistake of
# mse_mistakes scales the gradient by a factor of its own (tests/test_mistakes.py checks it)
MSE_SHAPES = ((3, 4), (4, 3, 2), (3, 2, 2, 2), (5, 1, 3))
mse_cases = st.tuples(st.sampled_from(MSE_SHAPES), st.integers(0, 2**31))


def make_mse(case: tuple) -> tuple[Tensor, Tensor, int]:
    shape, seed = case
    return randn(shape, seed), randn(shape, seed + 1), seed


def mse_mistakes(shape: tuple[int, ...], reduction: str,
                 upstream: float = 1.0) -> dict[float, str]:
    """The classic mistakes of MSELoss.backward for a prediction of `shape` and a scalar upstream
    gradient: the factor each multiplies the right gradient by → the mistake, in words."""
    n, numel = shape[0], math.prod(shape)
    mistakes = {0.5: "the factor 2 is missing: ∂(p − t)²/∂p = 2·(p − t)"}
    if upstream != 1.0:
        mistakes[1 / upstream] = f"grad_output ({upstream:.4g} here) is not multiplied in"
    if reduction != "mean":
        return mistakes | {
            1 / numel: f"divided by numel = {numel}: reduction={reduction!r} divides by nothing",
            1 / n: f"divided by the batch size N = {n}: reduction={reduction!r} divides by "
                   "nothing"}
    return mistakes | {
        numel: f"the division by numel = {numel} is missing",
        numel / 2: f"the factor 2 and the division by numel = {numel} are both missing",
        numel / n: f"divided by the batch size N = {n} instead of numel = {numel}",
        numel / (2 * n): f"divided by the batch size N = {n} instead of numel = {numel}, and "
                         "the factor 2 is missing",
        1 / numel: f"divided by numel twice (by numel² = {numel * numel})",
        n: f"divided by the elements per sample, numel/N = {numel // n}, instead of numel = "
           f"{numel}",
        1 / n: f"divided by the batch size N = {n} on top of numel = {numel}"}


@pytest.mark.T02_4
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(case=mse_cases)
def test_mse_loss(student, reduction, case):
    prediction, target, _ = make_mse(case)
    want = F.mse_loss(prediction, target, reduction=reduction)
    loss = student.mse_loss(reduction, prediction, target)
    expect_close(loss, want, f"the loss (reduction={reduction!r}, prediction of shape "
                 f"{case[0]})", **TOL, hint=LOSS_HINT[reduction])


@pytest.mark.T02_4
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(case=mse_cases)
def test_mse_gradient(student, reduction, case):
    prediction, target, seed = make_mse(case)
    loss_shape = tuple(F.mse_loss(prediction, target, reduction=reduction).shape)
    upstream = randn(loss_shape, seed + 2)
    _, (want,) = torch_grads(lambda p: F.mse_loss(p, target, reduction=reduction),
                             [prediction], upstream)
    scalar = float(upstream) if reduction != "none" else 1.0   # a backward ignoring it: ×1/it
    expect_close(student.mse_gradient(reduction, prediction, target, upstream), want,
                 f"∂L/∂prediction (reduction={reduction!r}, prediction of shape {case[0]}, with "
                 f"an upstream gradient)", **TOL, hint=GRAD_HINT[reduction],
                 mistakes=mse_mistakes(case[0], reduction, scalar))


@pytest.mark.T02_4
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@given(case=mse_cases)
def test_mse_default_backward(student, reduction, case):
    """backward() of a scalar loss: the gradient of the loss itself (upstream 1)."""
    prediction, target, _ = make_mse(case)
    _, (want,) = torch_grads(lambda p: F.mse_loss(p, target, reduction=reduction),
                             [prediction], torch.tensor(1.0, dtype=torch.float64))
    expect_close(student.mse_gradient(reduction, prediction, target), want,
                 f"∂loss/∂prediction (reduction={reduction!r}, prediction of shape {case[0]})",
                 **TOL, hint=GRAD_HINT[reduction], mistakes=mse_mistakes(case[0], reduction))
