"""`MaxPool2d`: the maximum over each window; the gradient flows to the arg-max only."""
from __future__ import annotations

import torch
from torch import Tensor

from .im2col import Pair, pair, patches
from .module import Module
from .validation import batched, expect_grad, expect_spatial, shape_str


def pool_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int,
                     ceil_mode: bool) -> int:
    """⌊(size + 2·padding − dilation·(kernel − 1) − 1) / stride⌋ + 1, rounded up with ceil_mode,
    where a last window that would start in the right padding is dropped (torch's rule)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


class MaxPool2d(Module):
    """x: (N, C, H, W) or (C, H, W) → (N, C, H_out, W_out) or (C, H_out, W_out): the maximum of
    each window of kernel_size taps `dilation` apart, every `stride` (default: kernel_size), over
    x padded with `padding` taps that never win; H_out as `pool_output_size`. As
    torch.nn.MaxPool2d, with return_indices=True forward returns (y, indices): the flat index
    h·W + w in x's plane of each maximum (the first of equal maxima; the last NaN, which wins),
    what `MaxUnpool2d` takes."""

    def __init__(self, kernel_size: int | Pair, stride: int | Pair | None = None,
                 padding: int | Pair = 0, dilation: int | Pair = 1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride if stride is not None else kernel_size, "stride")
        self.padding = pair(padding, "padding")
        self.dilation = pair(dilation, "dilation")
        self.return_indices, self.ceil_mode = return_indices, ceil_mode
        if min(self.kernel_size + self.stride + self.dilation) < 1 or min(self.padding) < 0:
            raise ValueError(f"MaxPool2d: kernel_size {self.kernel_size}, stride {self.stride} and "
                             f"dilation {self.dilation} must be ≥ 1, padding {self.padding} ≥ 0")
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"MaxPool2d: padding {self.padding} must be at most half of "
                             f"kernel_size {self.kernel_size}")

    def output_size(self, h: int, w: int) -> Pair:
        """(H_out, W_out) for an input of H×W."""
        return tuple(pool_output_size(s, k, st, p, d, self.ceil_mode) for s, k, st, p, d in zip(
            (h, w), self.kernel_size, self.stride, self.padding, self.dilation))  # type: ignore

    def _inside(self, x: Tensor, out: Pair) -> Tensor:
        """(H_out, W_out, kh·kw): whether each tap of each window falls inside x (not in the
        padding); a ValueError if a window has none (possible with dilation > 1), which torch
        reports as −∞ with an index outside the plane."""
        masks = []
        for axis, n, o, k, s, p, d in zip("HW", x.shape[-2:], out, self.kernel_size, self.stride,
                                          self.padding, self.dilation):
            taps = torch.arange(o)[:, None] * s - p + torch.arange(k) * d     # (o, k)
            masks.append((taps >= 0) & (taps < n))
            if not masks[-1].any(1).all():
                raise ValueError(f"{self._short_repr()}: with input of shape {shape_str(x.shape)} "
                                 f"some windows lie entirely in the padding along {axis}; reduce "
                                 "padding or dilation")
        rows, cols = masks
        return (rows[:, None, :, None] & cols[None, :, None, :]).reshape(*out, -1).to(x.device)

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        xb = batched(self, x)
        n, c, h, w = xb.shape
        out = self.output_size(h, w)
        expect_spatial(self, x, out)
        inside = self._inside(x, out)
        (ph, pw), (kh, kw) = self.padding, self.kernel_size
        extent = [(o - 1) * s + d * (k - 1) + 1 for o, k, s, d in
                  zip(out, self.kernel_size, self.stride, self.dilation)]
        lowest = float("-inf") if x.is_floating_point() else torch.iinfo(x.dtype).min
        xp = xb.new_full((n, c, *extent), lowest)
        rows, cols = min(h, extent[0] - ph), min(w, extent[1] - pw)
        xp[:, :, ph:ph + rows, pw:pw + cols] = xb[:, :, :rows, :cols]
        windows = patches(xp, out, self.kernel_size, self.stride, self.dilation)
        windows = windows.permute(0, 3, 1, 2, 4, 5).reshape(n, c, *out, kh * kw)
        y = windows.amax(-1)
        tap = ((windows == y[..., None]) & inside).to(torch.uint8).argmax(-1)  # first max inside
        nan = windows.isnan()
        if nan.any():
            last_nan = kh * kw - 1 - nan.flip(-1).to(torch.uint8).argmax(-1)
            tap = torch.where(nan.any(-1), last_nan, tap)
        row = (torch.arange(out[0], device=x.device)[:, None] * self.stride[0] - ph
               + tap // kw * self.dilation[0])
        col = (torch.arange(out[1], device=x.device) * self.stride[1] - pw
               + tap % kw * self.dilation[1])
        indices = row * w + col                                            # (N, C, Ho, Wo)
        if x.dim() == 3:
            y, indices = y[0], indices[0]
        self.save_for_backward(indices=indices, input_shape=tuple(x.shape))
        return (y, indices) if self.return_indices else y

    def backward(self, grad_output: Tensor) -> Tensor:
        """grad_output: shaped like y → the gradient, shaped like x, each output's gradient added
        at its maximum."""
        saved = self.saved
        indices, input_shape = saved["indices"], saved["input_shape"]
        expect_grad(self, grad_output, tuple(indices.shape))
        planes = indices.shape[:-2]
        grad = grad_output.new_zeros(*planes, input_shape[-2] * input_shape[-1])
        grad.scatter_add_(-1, indices.flatten(-2), grad_output.flatten(-2))
        return grad.reshape(input_shape)

    def extra_repr(self) -> str:
        extra = "".join(f", {name}={value}" for name, value, default in (
            ("dilation", self.dilation, (1, 1)), ("return_indices", self.return_indices, False),
            ("ceil_mode", self.ceil_mode, False)) if value != default)
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}{extra}")
