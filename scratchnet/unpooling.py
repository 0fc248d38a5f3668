"""`MaxUnpool2d`: put each value back where `MaxPool2d(return_indices=True)` found it."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .im2col import Pair, pair
from .module import Module
from .pooling import batched
from .validation import expect_grad, expect_spatial, shape_str


class MaxUnpool2d(Module):
    """x: (N, C, H, W) or (C, H, W) and indices of x's shape → y: (N, C, H_out, W_out) or
    (C, H_out, W_out), zero except y[n, c].flatten()[indices[n, c]] = x[n, c], as
    torch.nn.MaxUnpool2d. H_out = (H − 1)·stride − 2·padding + kernel_size, or output_size
    ((H_out, W_out) or (N, C, H_out, W_out)) within ±stride of it. Backward gathers:
    dx = dy.flatten()[indices] per plane."""

    def __init__(self, kernel_size: int | Pair, stride: int | Pair | None = None,
                 padding: int | Pair = 0) -> None:
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride if stride is not None else kernel_size, "stride")
        self.padding = pair(padding, "padding")
        if min(self.kernel_size + self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"MaxUnpool2d: kernel_size {self.kernel_size} and stride "
                             f"{self.stride} must be ≥ 1, padding {self.padding} ≥ 0")

    def output_size(self, h: int, w: int, output_size: Sequence[int] | None = None) -> Pair:
        """(H_out, W_out) for an input of H×W: the default, or the requested `output_size`."""
        default = [(s - 1) * st - 2 * p + k for s, k, st, p in
                   zip((h, w), self.kernel_size, self.stride, self.padding)]
        if output_size is None:
            return tuple(default)  # type: ignore[return-value]
        size = tuple(output_size)[-2:] if len(output_size) == 4 else tuple(output_size)
        if len(size) != 2 or not all(d - s < o < d + s for o, d, s in
                                     zip(size, default, self.stride)):
            raise ValueError(f"{self._short_repr()}: output_size {tuple(output_size)} must be "
                             f"(H_out, W_out) or (N, C, H_out, W_out) with H_out and W_out "
                             f"strictly within ±stride {self.stride} of {tuple(default)}")
        return size  # type: ignore[return-value]

    def forward(self, x: Tensor, indices: Tensor,
                output_size: Sequence[int] | None = None) -> Tensor:
        xb = batched(self, x)
        if not isinstance(indices, Tensor) or indices.shape != x.shape \
                or indices.dtype != torch.int64:
            got = (f"{indices.dtype} of shape {shape_str(indices.shape)}"
                   if isinstance(indices, Tensor) else type(indices).__name__)
            raise ValueError(f"{self._short_repr()}: indices must be an int64 tensor of the "
                             f"input's shape {shape_str(x.shape)}, got {got}")
        n, c, h, w = xb.shape
        out = self.output_size(h, w, output_size)
        expect_spatial(self, x, out)
        flat = indices.reshape(n, c, h * w)
        if flat.numel() and (flat.min() < 0 or flat.max() >= out[0] * out[1]):
            raise ValueError(f"{self._short_repr()}: indices must lie in [0, {out[0] * out[1]}) "
                             f"for an output of {out[0]}×{out[1]}, got "
                             f"{int(flat.min())} … {int(flat.max())}")
        values = xb.reshape(n, c, h * w)
        y = values.new_zeros(n, c, out[0] * out[1]).scatter_(2, flat, values)
        kept = y.gather(2, flat)
        if not ((kept == values) | (kept.isnan() & values.isnan())).all():
            raise ValueError(f"{self._short_repr()}: indices repeat a position with different "
                             "values, where torch's result is undefined")
        self.save_for_backward(indices=indices, output_shape=(*x.shape[:-2], *out))
        return y.reshape(*x.shape[:-2], *out)

    def backward(self, grad_output: Tensor) -> Tensor:
        """grad_output: shaped like y → the gradient, shaped like x."""
        saved = self.saved
        indices = saved["indices"]
        expect_grad(self, grad_output, saved["output_shape"])
        return grad_output.flatten(-2).gather(-1, indices.flatten(-2)).reshape(indices.shape)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
