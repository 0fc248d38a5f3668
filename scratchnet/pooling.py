"""`MaxPool2d`: the maximum over each window; the gradient flows to the arg-max only."""
from __future__ import annotations

import torch
from torch import Tensor

from .im2col import Pair, conv_output_size, pad2d, pair, patches
from .module import Module
from .validation import expect_grad, expect_input, expect_spatial


class MaxPool2d(Module):
    """x: (N, C, H, W) → (N, C, H_out, W_out), windows of kernel_size every `stride` (default:
    kernel_size) with implicit −∞ padding; H_out = ⌊(H + 2·padding − kernel) / stride⌋ + 1."""

    def __init__(self, kernel_size: int | Pair, stride: int | Pair | None = None,
                 padding: int | Pair = 0) -> None:
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride if stride is not None else kernel_size, "stride")
        self.padding = pair(padding, "padding")
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"MaxPool2d: padding {self.padding} must be at most half of "
                             f"kernel_size {self.kernel_size}")

    def forward(self, x: Tensor) -> Tensor:
        expect_input(self, x, 4)
        n, c, h, w = x.shape
        out = tuple(conv_output_size(s, k, st, p, 1) for s, k, st, p in
                    zip((h, w), self.kernel_size, self.stride, self.padding))
        expect_spatial(self, x, out)  # type: ignore[arg-type]
        xp = pad2d(x, self.padding, float("-inf"))
        windows = patches(xp, out, self.kernel_size, self.stride, (1, 1))   # (N, Ho, Wo, C, kh, kw)
        kh, kw = self.kernel_size
        y, index = windows.reshape(*windows.shape[:4], kh * kw).max(-1)
        self.save_for_backward(index=index, padded_shape=tuple(xp.shape), input_shape=(n, c, h, w))
        return y.permute(0, 3, 1, 2)

    def backward(self, grad_output: Tensor) -> Tensor:
        saved = self.saved
        index = saved["index"]                                             # (N, Ho, Wo, C)
        n, ho, wo, c = index.shape
        expect_grad(self, grad_output, (n, c, ho, wo))
        g = grad_output.permute(0, 2, 3, 1)
        grad = grad_output.new_zeros(saved["padded_shape"])
        target = patches(grad, (ho, wo), self.kernel_size, self.stride, (1, 1))
        kw = self.kernel_size[1]
        for i in range(self.kernel_size[0]):
            for j in range(kw):
                target[:, :, :, :, i, j] += torch.where(index == i * kw + j, g, 0)
        h, w = saved["input_shape"][2:]
        ph, pw = self.padding
        return grad[:, :, ph:ph + h, pw:pw + w]

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
