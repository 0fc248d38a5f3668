"""Notebook 05 · Transposed convolution: T05.1 ConvTranspose2d.forward, T05.2
ConvTranspose2d.backward. The student's side: probes/t05_transposed.py. References: torch
(F.conv_transpose2d, autograd) in float64."""
from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor

from scratchnet.coursework.checks import expect_close
from scratchnet.coursework.references import randn, torch_grads

pytestmark = pytest.mark.T05
TOL = {"rtol": 1e-10, "atol": 1e-12}


def pairs(low: int, high: int) -> st.SearchStrategy[tuple[int, int]]:
    return st.tuples(st.integers(low, high), st.integers(low, high))


@st.composite
def cases(draw: st.DrawFn) -> dict:
    """ConvTranspose2d arguments (every hyper-parameter per axis, output_padding < max(stride,
    dilation) as torch requires), an input shape (N > 1, H ≠ W) and a seed."""
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1 if groups > 1 else 2, 3))
    c_out = groups * draw(st.integers(1 if groups > 1 else 2, 3))
    kernel, stride = draw(pairs(1, 3), label="kernel"), draw(pairs(1, 3), label="stride")
    padding, dilation = draw(pairs(0, 2), label="padding"), draw(pairs(1, 2), label="dilation")
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1), label="output_padding")
                           for s, d in zip(stride, dilation))
    low = [max(1, 1 - (d * (k - 1) + op - 2 * p) // s) for k, s, p, d, op in
           zip(kernel, stride, padding, dilation, output_padding)]
    h = draw(st.integers(low[0], low[0] + 3), label="H")
    w = draw(st.integers(low[1], low[1] + 3).filter(lambda w: w != h), label="W")
    return {"args": (c_in, c_out, kernel),
            "kwargs": {"stride": stride, "padding": padding, "output_padding": output_padding,
                       "groups": groups, "bias": draw(st.booleans(), label="bias"),
                       "dilation": dilation},
            "input_shape": (draw(st.integers(2, 3), label="N"), c_in, h, w),
            "seed": draw(st.integers(0, 2**31))}


ASYMMETRIC = {"args": (3, 2, (3, 2)),
              "kwargs": {"stride": (2, 3), "padding": (1, 0), "output_padding": (1, 0),
                         "groups": 1, "bias": True, "dilation": (1, 2)},
              "input_shape": (2, 3, 4, 3), "seed": 0}


def make(case: dict) -> tuple[Tensor, Tensor | None, Tensor]:
    """The layer's weight (C_in, C_out/groups, kh, kw), bias (C_out,) or None, and an input x."""
    (c_in, c_out, kernel), kwargs = case["args"], case["kwargs"]
    weight = randn((c_in, c_out // kwargs["groups"], *kernel), case["seed"])
    bias = randn((c_out,), case["seed"] + 1) if kwargs["bias"] else None
    return weight, bias, randn(case["input_shape"], case["seed"] + 2)


def function(case: dict) -> Callable[..., Tensor]:
    """The layer as a torch function of (x, weight[, bias])."""
    kwargs = {k: v for k, v in case["kwargs"].items() if k != "bias"}
    return lambda x, weight, bias=None: F.conv_transpose2d(x, weight, bias, **kwargs)


def describe(case: dict) -> str:
    """'ConvTranspose2d(3, 2, kernel_size=(3, 2), …) for x of shape (2, 3, 4, 3)': the layer as
    its repr names it (torch's, which scratchnet's copies)."""
    layer = torch.nn.ConvTranspose2d(*case["args"], **case["kwargs"], device="meta")
    return f"{layer!r} for x of shape {tuple(case['input_shape'])}"


FORWARD_HINT = ("every input pixel stamps its kernel onto the output: rows X·W (X = x as "
                "(N·H·W, C_in), W = weight as (C_in, C_out·kh·kw), per group with groups), "
                "col2im onto the full output (H − 1)·stride + dilation·(kernel − 1) + 1 with no "
                "padding (overlapping stamps add up), then crop `padding` on each side — and "
                "output_padding extra rows/columns at the end — and add the bias per channel")


def check_forward(student, case: dict, impl: str | None) -> None:
    """The student's layer's output for the case's input, against torch's."""
    weight, bias, x = make(case)
    want = function(case)(x, weight, bias)
    got = student.conv_transpose(case["args"], case["kwargs"], impl, weight, bias, x)
    expect_close(got["y"], want, f"the output of {describe(case)}", **TOL, hint=FORWARD_HINT)


@pytest.mark.T05_1
def test_conv_transpose2d_forward_asymmetric_case(student, impl):
    check_forward(student, ASYMMETRIC, impl)


@pytest.mark.T05_1
@given(case=cases())
def test_conv_transpose2d_forward(student, impl, case):
    check_forward(student, case, impl)


DX_HINT = ("the gradient of a scatter is a gather: pad grad_output back to the full size "
           "(undo the crop), im2col it with the layer's kernel, stride and dilation (one row per "
           "input pixel: the outputs it stamped), then dx = those rows · Wᵀ (per group), as "
           "(N, C_in, H, W)")
DW_HINT = ("dW = Xᵀ·(im2col of the padded gradient), X = x as (N·H·W, C_in) saved by forward, "
           "reshaped to weight's shape (C_in, C_out/groups, kh, kw); per group with groups")
DB_HINT = ("db = the sum of grad_output over the batch and every output position (dims 0, 2, "
           "3) — a sum, not a mean")
ACCUMULATE_HINT = ("gradients accumulate: add to p.grad with self.accumulate_grad(name, grad), "
                   "never assign p.grad")


def check_backward(student, case: dict, impl: str | None) -> None:
    """∂L/∂x, ∂L/∂weight and ∂L/∂bias of the student's layer against torch's, and what a
    second forward/backward pass adds to the gradients."""
    weight, bias, x = make(case)
    params = [weight] + ([bias] if bias is not None else [])
    g = randn(tuple(function(case)(x, *params).shape), case["seed"] + 3)
    _, (dx, dw, *db) = torch_grads(function(case), [x, *params], g)
    got = student.conv_transpose(case["args"], case["kwargs"], impl, weight, bias, x, g)
    first, second = got["grads"]
    name = describe(case)
    expect_close(got["dx"], dx, f"∂L/∂x of {name}", **TOL, hint=DX_HINT)
    expect_close(first["weight"], dw, f"∂L/∂weight of {name}", **TOL, hint=DW_HINT)
    if bias is not None:
        expect_close(first["bias"], db[0], f"∂L/∂bias of {name}", **TOL, hint=DB_HINT)
    for param, want in [("weight", dw)] + ([("bias", db[0])] if bias is not None else []):
        expect_close(second[param] - first[param], want,
                     f"what a second backward pass added to {param}.grad of {name}", **TOL,
                     hint=ACCUMULATE_HINT)


@pytest.mark.T05_2
def test_conv_transpose2d_backward_asymmetric_case(student, impl):
    check_backward(student, ASYMMETRIC, impl)


@pytest.mark.T05_2
@given(case=cases())
def test_conv_transpose2d_backward(student, impl, case):
    check_backward(student, case, impl)
