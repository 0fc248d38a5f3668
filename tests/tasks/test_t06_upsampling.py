"""Notebook 06 · Nearest-neighbour upsampling: T06.1 nearest_upsample, T06.2
nearest_upsample_backward. The student's side: probes/t06_upsampling.py. References: torch
(F.interpolate(mode="nearest"), autograd) in float64."""
from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from scratchnet.coursework.checks import expect_close
from scratchnet.coursework.references import randn

pytestmark = pytest.mark.T06
TOL = {"rtol": 1e-12, "atol": 1e-12}


@st.composite
def cases(draw: st.DrawFn) -> tuple[tuple[int, int, int, int], tuple[int, int], int]:
    """x's shape (N > 1, C > 1, H ≠ W), the scale (s_h, s_w) — often s_h ≠ s_w — and a seed."""
    h = draw(st.integers(1, 4), label="H")
    w = draw(st.integers(1, 4).filter(lambda w: w != h), label="W")
    scale = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)), label="scale")
    shape = (draw(st.integers(2, 3)), draw(st.integers(2, 3)), h, w)
    return shape, scale, draw(st.integers(0, 2**31))


# Always tested: s_h ≠ s_w both ways, s = 1 on one axis, the common 2×2.
FIXED = [((2, 3, 3, 2), (2, 3), 0), ((2, 2, 2, 5), (3, 1), 1), ((3, 2, 4, 3), (2, 2), 2)]


FORWARD_HINT = ("every pixel x[n, c, i, j] becomes an s_h×s_w block: y[n, c, s_h·i + a, s_w·j + b] "
                "= x[n, c, i, j] for 0 ≤ a < s_h, 0 ≤ b < s_w; output (N, C, s_h·H, s_w·W). "
                "s_h and s_w may differ")
BACKWARD_HINT = ("the gradient of a copy is a sum: dx[n, c, i, j] = the sum of grad over its "
                 "s_h×s_w block — reshape grad to (N, C, H, s_h, W, s_w) with H = grad.shape[2] "
                 "// s_h and W = grad.shape[3] // s_w, and sum dims 3 and 5. s_h and s_w may "
                 "differ: rows use s_h, columns s_w")


def check_forward(student: Any, shape: tuple[int, int, int, int], scale: tuple[int, int],
                  seed: int) -> None:
    x = randn(shape, seed)
    want = F.interpolate(x, scale_factor=scale, mode="nearest")
    what = f"nearest_upsample(x, {scale}) for x of shape {shape}"
    expect_close(student.nearest_upsample(x, scale), want, what, **TOL, hint=FORWARD_HINT)


def check_backward(student: Any, shape: tuple[int, int, int, int], scale: tuple[int, int],
                   seed: int) -> None:
    x = randn(shape, seed)
    n, c, h, w = shape
    g = randn((n, c, h * scale[0], w * scale[1]), seed + 1)
    with torch.enable_grad():
        leaf = x.clone().requires_grad_(True)
        F.interpolate(leaf, scale_factor=scale, mode="nearest").backward(g)
    what = f"nearest_upsample_backward(grad, {scale}) for grad of shape {tuple(g.shape)}"
    expect_close(student.nearest_upsample_backward(g, scale), leaf.grad, what, **TOL,
                 hint=BACKWARD_HINT)


@pytest.mark.T06_1
@pytest.mark.parametrize("case", FIXED, ids=lambda c: f"scale={c[1]}")
def test_nearest_upsample_fixed_cases(student, case):
    check_forward(student, *case)


@pytest.mark.T06_1
@given(case=cases())
def test_nearest_upsample(student, case):
    check_forward(student, *case)


@pytest.mark.T06_2
@pytest.mark.parametrize("case", FIXED, ids=lambda c: f"scale={c[1]}")
def test_nearest_upsample_backward_fixed_cases(student, case):
    check_backward(student, *case)


@pytest.mark.T06_2
@given(case=cases())
def test_nearest_upsample_backward(student, case):
    check_backward(student, *case)
