"""Notebook 05 · Transposed convolution: T05.1 ConvTranspose2d.forward, T05.2
ConvTranspose2d.backward. References: torch (F.conv_transpose2d, autograd) in float64."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor

import scratchnet as sn
from scratchnet.coursework.checks import expect_close
from scratchnet.coursework.references import randn

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


def make(case: dict, impl: str | None) -> tuple[sn.ConvTranspose2d, Tensor]:
    layer = sn.ConvTranspose2d(*case["args"], **case["kwargs"], dtype=torch.float64)
    if impl is not None:
        layer.impl = impl
    layer.weight.copy_(randn(tuple(layer.weight.shape), case["seed"]))
    if layer.bias is not None:
        layer.bias.copy_(randn(tuple(layer.bias.shape), case["seed"] + 1))
    return layer, randn(case["input_shape"], case["seed"] + 2)


def reference(layer: sn.ConvTranspose2d, x: Tensor, g: Tensor | None = None):
    """torch's output and, given an upstream gradient g, the gradients of x, weight, bias."""
    params = [layer.weight] + ([layer.bias] if layer.bias is not None else [])
    kwargs = {"stride": layer.stride, "padding": layer.padding,
              "output_padding": layer.output_padding, "groups": layer.groups,
              "dilation": layer.dilation}
    with torch.enable_grad():
        leaves = [t.clone().requires_grad_(g is not None) for t in (x, *params)]
        y = F.conv_transpose2d(leaves[0], leaves[1], leaves[2] if len(leaves) > 2 else None,
                               **kwargs)
        if g is None:
            return y.detach(), []
        y.backward(g)
    return y.detach(), [leaf.grad for leaf in leaves]


FORWARD_HINT = ("every input pixel stamps its kernel onto the output: rows X·W (X = x as "
                "(N·H·W, C_in), W = weight as (C_in, C_out·kh·kw), per group with groups), "
                "col2im onto the full output (H − 1)·stride + dilation·(kernel − 1) + 1 with no "
                "padding (overlapping stamps add up), then crop `padding` on each side — and "
                "output_padding extra rows/columns at the end — and add the bias per channel")


def check_forward(case: dict, impl: str | None) -> None:
    layer, x = make(case, impl)
    want, _ = reference(layer, x)
    expect_close(layer(x), want, f"the output of {layer!r} for x of shape {tuple(x.shape)}",
                 **TOL, hint=FORWARD_HINT)


@pytest.mark.T05_1
def test_conv_transpose2d_forward_asymmetric_case(impl):
    check_forward(ASYMMETRIC, impl)


@pytest.mark.T05_1
@given(case=cases())
def test_conv_transpose2d_forward(impl, case):
    check_forward(case, impl)


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


def check_backward(case: dict, impl: str | None) -> None:
    layer, x = make(case, impl)
    y = layer(x)
    g = randn(tuple(y.shape), case["seed"] + 3)
    _, (dx, dw, *db) = reference(layer, x, g)
    name = f"{layer!r} for x of shape {tuple(x.shape)}"
    expect_close(layer.backward(g), dx, f"∂L/∂x of {name}", **TOL, hint=DX_HINT)
    expect_close(layer.weight.grad, dw, f"∂L/∂weight of {name}", **TOL, hint=DW_HINT)
    if layer.bias is not None:
        expect_close(layer.bias.grad, db[0], f"∂L/∂bias of {name}", **TOL, hint=DB_HINT)
    first = {n: p.grad.clone() for n, p in layer.named_parameters()}
    layer(x)
    layer.backward(g)
    for param, want in [("weight", dw)] + ([("bias", db[0])] if layer.bias is not None else []):
        expect_close(getattr(layer, param).grad - first[param], want,
                     f"what a second backward pass added to {param}.grad of {name}", **TOL,
                     hint=ACCUMULATE_HINT)


@pytest.mark.T05_2
def test_conv_transpose2d_backward_asymmetric_case(impl):
    check_backward(ASYMMETRIC, impl)


@pytest.mark.T05_2
@given(case=cases())
def test_conv_transpose2d_backward(impl, case):
    check_backward(case, impl)
