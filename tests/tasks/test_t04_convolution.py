"""Notebook 04 · Convolution with unfold: T04.1 unfold, T04.2 fold, T04.3 conv2d_forward,
T04.4 conv2d_backward. The student's side: probes/t04_convolution.py. References: torch
(F.unfold, F.fold, F.conv2d, autograd) in float64.

T04.4 builds the patch matrix cols itself (from F.unfold) and sends it, so that it needs no
other task; the probe calls conv2d_backward with impl="reference", the layout those cols have.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor

from scratchnet.coursework.checks import expect_close
from scratchnet.coursework.references import randn

pytestmark = pytest.mark.T04
TOL = {"rtol": 1e-10, "atol": 1e-12}
Pair = tuple[int, int]


@dataclass(frozen=True)
class Conv:
    """A convolution's hyper-parameters and shapes: x (N, C_in, H, W), weight
    (C_out, C_in/groups, kh, kw)."""

    n: int
    c_in: int
    c_out: int
    size: Pair
    kernel: Pair
    stride: Pair
    padding: Pair
    dilation: Pair
    groups: int
    bias: bool
    seed: int

    @property
    def out_size(self) -> Pair:
        return tuple((s + 2 * p - d * (k - 1) - 1) // st + 1 for s, k, st, p, d in zip(
            self.size, self.kernel, self.stride, self.padding, self.dilation))  # type: ignore

    @property
    def args(self) -> dict:
        """F.unfold / F.fold / F.conv2d's keyword arguments."""
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation}

    def x(self) -> Tensor:
        return randn((self.n, self.c_in, *self.size), self.seed)

    def weight(self) -> Tensor:
        return randn((self.c_out, self.c_in // self.groups, *self.kernel), self.seed + 1)

    def bias_(self) -> Tensor | None:
        return randn((self.c_out,), self.seed + 2) if self.bias else None

    def describe(self, layer: bool = True) -> str:
        """The case in the messages' words: x's shape and the hyper-parameters; with `layer`,
        weight's shape (not the kernel), groups and the bias too."""
        x = f"x of shape {(self.n, self.c_in, *self.size)}"
        hyper = f"stride {self.stride}, padding {self.padding}, dilation {self.dilation}"
        if not layer:
            return f"{x}, kernel {self.kernel}, {hyper}"
        weight = (self.c_out, self.c_in // self.groups, *self.kernel)
        return (f"{x}, weight of shape {weight}, {hyper}, groups {self.groups}, "
                f"{'with a bias' if self.bias else 'bias None'}")


def pairs(low: int, high: int) -> st.SearchStrategy[Pair]:
    return st.tuples(st.integers(low, high), st.integers(low, high))


@st.composite
def convs(draw: st.DrawFn, grouped: bool = True, bias: bool | None = None) -> Conv:
    """Batch > 1, channels > 1, H ≠ W, kernel, stride, padding and dilation drawn per axis; the
    output is at least 1×1. `bias`: whether the case has a bias (drawn when None)."""
    groups = draw(st.integers(1, 3)) if grouped else 1
    c_in = groups * draw(st.integers(1 if groups > 1 else 2, 3))
    c_out = groups * draw(st.integers(1 if groups > 1 else 2, 3))
    kernel, stride = draw(pairs(1, 3), label="kernel"), draw(pairs(1, 3), label="stride")
    padding, dilation = draw(pairs(0, 2), label="padding"), draw(pairs(1, 2), label="dilation")
    low = [max(1, d * (k - 1) + 1 - 2 * p) for k, p, d in zip(kernel, padding, dilation)]
    h = draw(st.integers(low[0], low[0] + 4), label="H")
    w = draw(st.integers(low[1], low[1] + 4).filter(lambda w: w != h), label="W")
    return Conv(draw(st.integers(2, 3), label="N"), c_in, c_out, (h, w), kernel, stride, padding,
                dilation, groups, draw(st.booleans(), label="bias") if bias is None else bias,
                draw(st.integers(0, 2**31)))


# A fixed case with every hyper-parameter different per axis, always tested first.
ASYMMETRIC = Conv(2, 3, 4, (7, 6), (3, 2), (2, 1), (1, 2), (1, 2), 1, True, 0)
# One property per case, the rest plain (square 3×3, stride 1, no padding or dilation, one group,
# a bias): partial credit follows what works, and a bug shows in the case it belongs to.
PLAIN = Conv(2, 3, 4, (6, 5), (3, 3), (1, 1), (0, 0), (1, 1), 1, True, 20)
PROPERTIES = {
    "plain": PLAIN,
    "bias None": replace(PLAIN, bias=False),
    "non-square kernel": replace(PLAIN, kernel=(3, 2)),
    "unequal strides": replace(PLAIN, stride=(2, 1)),
    "padding": replace(PLAIN, padding=(1, 2)),
    "dilation": replace(PLAIN, dilation=(2, 1)),
    "groups": replace(PLAIN, c_in=4, c_out=6, groups=2),
    "C_out = 1": replace(PLAIN, c_out=1),
    "one image": replace(PLAIN, n=1),
}


# -- T04.1 unfold ------------------------------------------------------------------------------
UNFOLD_HINT = ("cols[n, (c, u, v), (i, j)] = x_pad[n, c, s_h·i + d_h·u, s_w·j + d_w·v]: rows "
               "ordered c, then u, then v, columns ordered i then j (row-major), x_pad = x with "
               "`padding` zeros on every side; shape (N, C·kh·kw, H_out·W_out)")


def check_unfold(student: Any, case: Conv) -> None:
    x = case.x()
    want = F.unfold(x, case.kernel, **case.args)
    got = student.unfold(x, case.kernel, case.stride, case.padding, case.dilation)
    expect_close(got, want, f"unfold(x) ({case.describe(layer=False)})", **TOL,
                 hint=UNFOLD_HINT)


@pytest.mark.T04_1
def test_unfold_asymmetric_case(student):
    check_unfold(student, ASYMMETRIC)


@pytest.mark.T04_1
@pytest.mark.parametrize("name", [n for n in PROPERTIES if n not in ("groups", "bias None")])
def test_unfold_one_property(student, name):
    check_unfold(student, PROPERTIES[name])


@pytest.mark.T04_1
@given(case=convs(grouped=False))
def test_unfold(student, case):
    check_unfold(student, case)


# -- T04.2 fold --------------------------------------------------------------------------------
FOLD_HINT = ("fold is the adjoint of unfold: add every entry cols[n, (c, u, v), (i, j)] onto "
             "x_pad[n, c, s_h·i + d_h·u, s_w·j + d_w·v] (+=: a pixel in several windows collects "
             "several entries; pixels in no window stay 0), then crop the padding to "
             "(N, C, H, W) = output_size")


def check_fold(student: Any, case: Conv) -> None:
    ho, wo = case.out_size
    cols = randn((case.n, case.c_in * case.kernel[0] * case.kernel[1], ho * wo), case.seed + 3)
    want = F.fold(cols, case.size, case.kernel, **case.args)
    got = student.fold(cols, case.size, case.kernel, case.stride, case.padding, case.dilation)
    expect_close(got, want, f"fold(cols) of cols of shape {tuple(cols.shape)} back onto "
                 f"{case.describe(layer=False)}", **TOL, hint=FOLD_HINT)


@pytest.mark.T04_2
def test_fold_asymmetric_case(student):
    check_fold(student, ASYMMETRIC)


@pytest.mark.T04_2
@pytest.mark.parametrize("name", [n for n in PROPERTIES if n not in ("groups", "bias None")])
def test_fold_one_property(student, name):
    check_fold(student, PROPERTIES[name])


@pytest.mark.T04_2
@given(case=convs(grouped=False))
def test_fold(student, case):
    check_fold(student, case)


# -- T04.3 conv2d_forward ----------------------------------------------------------------------
FORWARD_HINT = ("cols = im2col(x, …) has one row per output pixel (n, i, j); y = cols·Wᵀ + b with "
                "W = weight as a (C_out, C_in·kh·kw) matrix; with groups, one product per group: "
                "grouped_matmul(cols, Wᵀ, groups, bias) takes each group's matrix transposed, "
                "weight_matrices(weight, groups).transpose(1, 2), of shape (groups, "
                "C_in/groups·kh·kw, C_out/groups); then (N·H_out·W_out, C_out) → (N, H_out, W_out, "
                "C_out) → permute to (N, C_out, H_out, W_out)")
COLS_HINT = ("return the cols you multiplied: (N·H_out·W_out, C_in·kh·kw), row (n, i, j) holding "
             "the patch in unfold's order (c, u, v) — "
             "F.unfold(x, …).transpose(1, 2).reshape(-1, C·kh·kw)")


def reference_cols(x: Tensor, case: Conv) -> Tensor:
    """The patch matrix in the reference layout: one row per output pixel, columns (c, u, v)."""
    cols = F.unfold(x, case.kernel, **case.args)
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


def check_forward(student: Any, case: Conv, impl: str | None) -> None:
    x, weight, bias = case.x(), case.weight(), case.bias_()
    want = F.conv2d(x, weight, bias, groups=case.groups, **case.args)
    got = student.conv2d_forward(x, weight, bias, case.stride, case.padding, case.dilation,
                                 case.groups, impl)
    expect_close(got["y"], want, f"the output y of conv2d_forward ({case.describe()})", **TOL,
                 hint=FORWARD_HINT)
    if impl == "reference":
        expect_close(got["cols"], reference_cols(x, case), f"the cols conv2d_forward returns "
                     f"({case.describe(layer=False)})", **TOL, hint=COLS_HINT)


@pytest.mark.T04_3
def test_conv2d_forward_asymmetric_case(student, impl):
    check_forward(student, ASYMMETRIC, impl)


@pytest.mark.T04_3
@pytest.mark.parametrize("name", PROPERTIES)
def test_conv2d_forward_one_property(student, impl, name):
    check_forward(student, PROPERTIES[name], impl)


@pytest.mark.T04_3
@given(case=convs())
def test_conv2d_forward(student, impl, case):
    check_forward(student, case, impl)


@pytest.mark.T04_3
@given(case=convs())
def test_conv2d_forward_returns_the_cols(student, case):
    """With impl="reference" (the path you write), cols are in unfold's layout: conv2d_backward
    and the layer rely on it."""
    check_forward(student, case, "reference")


# -- T04.4 conv2d_backward ---------------------------------------------------------------------
DX_HINT = ("dx = col2im(G·W): G = grad_out as a (N·H_out·W_out, C_out) matrix (permute to "
           "(N, H_out, W_out, C_out) before reshaping), times W as a (C_out, C_in·kh·kw) matrix "
           "(per group with groups: grouped_matmul(G, weight_matrices(weight, groups), groups), "
           "W as it is — not transposed as in the forward), the rows scattered back by col2im "
           "(overlaps add up)")
DW_HINT = ("dW = Gᵀ·cols, reshaped to weight's shape (C_out, C_in/groups, kh, kw); G's rows are "
           "the output pixels (n, i, j) in the same order as cols' rows — permute grad_out to "
           "(N, H_out, W_out, C_out) before reshaping; with groups, one product per group "
           "(grouped_gram)")
DB_HINT = ("db = Σ_rows G: the sum of grad_out over the batch and every output position (dims "
           "0, 2 and 3) — a sum, not a mean: the bias is added at every position")


def check_backward(student: Any, case: Conv) -> None:
    """conv2d_backward's three results against torch's, for a case with a bias (db is always
    computed), so that the case shown fits a failure of ∂L/∂b too."""
    x, weight, bias = case.x(), case.weight(), case.bias_()
    g = randn((case.n, case.c_out, *case.out_size), case.seed + 4)
    with torch.enable_grad():
        leaves = [t.clone().requires_grad_(True) for t in (x, weight, bias)]
        F.conv2d(*leaves, groups=case.groups, **case.args).backward(g)
    dx, dw, db = (leaf.grad for leaf in leaves)
    got = student.conv2d_backward(g, reference_cols(x, case), tuple(x.shape), weight,
                                  case.stride, case.padding, case.dilation, case.groups)
    shown = case.describe()
    expect_close(got["db"], db, f"∂L/∂b (the third result of conv2d_backward; {shown})", **TOL,
                 hint=DB_HINT)
    expect_close(got["dw"], dw, f"∂L/∂W (the second result of conv2d_backward; {shown})", **TOL,
                 hint=DW_HINT)
    expect_close(got["dx"], dx, f"∂L/∂x (the first result of conv2d_backward; {shown})", **TOL,
                 hint=DX_HINT)


@pytest.mark.T04_4
def test_conv2d_backward_asymmetric_case(student):
    check_backward(student, ASYMMETRIC)


@pytest.mark.T04_4
@pytest.mark.parametrize("name", [n for n in PROPERTIES if n != "bias None"])
def test_conv2d_backward_one_property(student, name):
    check_backward(student, PROPERTIES[name])


@pytest.mark.T04_4
@given(case=convs(bias=True))
def test_conv2d_backward(student, case):
    check_backward(student, case)
