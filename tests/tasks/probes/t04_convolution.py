"""Notebook 04: unfold (T04.1), fold (T04.2), conv2d_forward (T04.3) and conv2d_backward (T04.4)."""
from __future__ import annotations

from torch import Tensor

from scratchnet import conv, im2col

Pair = tuple[int, int]


def unfold(x: Tensor, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair) -> Tensor:
    """→ the cols that im2col.unfold returns."""
    return im2col.unfold(x, kernel, stride, padding, dilation)


def fold(cols: Tensor, output_size: Pair, kernel: Pair, stride: Pair, padding: Pair,
         dilation: Pair) -> Tensor:
    """→ what im2col.fold returns."""
    return im2col.fold(cols, output_size, kernel, stride, padding, dilation)


def conv2d_forward(x: Tensor, weight: Tensor, bias: Tensor | None, stride: Pair, padding: Pair,
                   dilation: Pair, groups: int, impl: str | None) -> dict:
    """conv2d_forward with `impl` (its default when None) → y and, with impl="reference", the
    cols it returned (None otherwise: a fast path returns its own saved state)."""
    args = (x, weight, bias, stride, padding, dilation, groups)
    y, cols = conv.conv2d_forward(*args) if impl is None else conv.conv2d_forward(*args, impl)
    return {"y": y, "cols": cols if impl == "reference" else None}


def conv2d_backward(grad_out: Tensor, cols: Tensor, input_shape: tuple[int, ...], weight: Tensor,
                    stride: Pair, padding: Pair, dilation: Pair, groups: int) -> dict:
    """→ the three results of conv2d_backward(…, impl="reference"): dx, dw and db."""
    dx, dw, db = conv.conv2d_backward(grad_out, cols, input_shape, weight, stride, padding,
                                      dilation, groups, "reference")
    return {"dx": dx, "dw": dw, "db": db}
