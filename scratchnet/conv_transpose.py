"""`ConvTranspose2d`: the adjoint of `Conv2d` — its forward is a convolution's input gradient."""
from __future__ import annotations

import torch
from torch import Tensor

from .conv import ConvLayer, conv_extra_repr
from .im2col import Pair, col2im, grouped_gram, grouped_matmul, im2col, pair, window
from .validation import expect_grad, expect_input, expect_spatial


class ConvTranspose2d(ConvLayer):
    """Transposed convolution with torch.nn.ConvTranspose2d's signature, parameters and init.

    x: (N, C_in, H, W) → y: (N, C_out, H_out, W_out), or unbatched (C_in, H, W) → (C_out, H_out,
    W_out), H_out = (H − 1)·stride − 2·padding + dilation·(kernel − 1) + output_padding + 1.
    weight: (C_in, C_out/groups, kh, kw), bias: (C_out,). As in torch, padding is an int or a
    pair and padding_mode only 'zeros'.
    Forward scatters every input pixel through the kernel: col2im(X·W); backward convolves.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Pair,
                 stride: int | Pair = 1, padding: int | Pair = 0, output_padding: int | Pair = 0,
                 groups: int = 1, bias: bool = True, dilation: int | Pair = 1,
                 padding_mode: str = "zeros", device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        if padding_mode != "zeros":
            raise ValueError(f"ConvTranspose2d: padding_mode={padding_mode!r} is not supported; "
                             "only 'zeros' is, as in torch")
        if isinstance(padding, str):
            raise TypeError(f"ConvTranspose2d: padding={padding!r} is not supported; give an int "
                            "or a pair (torch's ConvTranspose2d fails on it in forward)")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups)
        self.padding_mode = padding_mode
        self.output_padding = pair(output_padding, "output_padding")
        for op, s, d in zip(self.output_padding, self.stride, self.dilation):
            if not 0 <= op < max(s, d):
                raise ValueError(f"ConvTranspose2d: output_padding {self.output_padding} must be "
                                 f"smaller than either stride {self.stride} or dilation "
                                 f"{self.dilation}")
        self.init_parameters((in_channels, out_channels // groups), bias, device, dtype)

    def output_size(self, h: int, w: int) -> Pair:
        return tuple(  # type: ignore[return-value]
            (size - 1) * s - 2 * p + d * (k - 1) + op + 1
            for size, s, p, d, k, op in zip((h, w), self.stride, self.padding, self.dilation,
                                             self.kernel_size, self.output_padding))

    def _full_size(self, h: int, w: int) -> Pair:
        """The output size before padding crops it: (H − 1)·stride + dilation·(kernel − 1) + 1."""
        return tuple(  # type: ignore[return-value]
            (size - 1) * s + d * (k - 1) + 1
            for size, s, d, k in zip((h, w), self.stride, self.dilation, self.kernel_size))

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C_in, H, W) → (N, C_out, H_out, W_out): the rows X·W (one kernel stamp per input
        pixel) folded (col2im) onto the full output, the padding cropped, the bias added."""
        expect_input(self, x, 4, self.in_channels)
        n, _, h, w = x.shape
        ho, wo = self.output_size(h, w)
        expect_spatial(self, x, (ho, wo))
        ### BEGIN SOLUTION
        x_rows = x.permute(0, 2, 3, 1).reshape(-1, self.in_channels)          # (N·H·W, C_in)
        w_rows = self.weight.reshape(self.groups, self.in_channels // self.groups, -1)
        cols = grouped_matmul(x_rows, w_rows, self.groups)                   # (N·H·W, C_out·k·k)
        full = col2im(cols, (n, self.out_channels, *self._full_size(h, w)), self.kernel_size,
                      self.stride, (0, 0), self.dilation, self.impl)
        y = window(full, self.padding, (ho, wo))
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1)
        self.save_for_backward(x_rows=x_rows, input_shape=tuple(x.shape),
                               output_shape=(n, self.out_channels, ho, wo))
        return y
        ### END SOLUTION

    def backward(self, grad_output: Tensor) -> Tensor:
        """grad_output: (N, C_out, H_out, W_out) → ∂L/∂x: (N, C_in, H, W); accumulates ∂L/∂weight
        and ∂L/∂bias. The gradient of a scatter is a gather: im2col of the gradient, padded back to
        the full size, gives every input pixel the outputs it stamped."""
        ### BEGIN SOLUTION
        saved = self.saved
        expect_grad(self, grad_output, saved["output_shape"])
        n, _, h, w = saved["input_shape"]
        g_full = window(grad_output, (-self.padding[0], -self.padding[1]), self._full_size(h, w))
        g_cols = im2col(g_full, self.kernel_size, self.stride, (0, 0), self.dilation,
                        self.impl)                                             # (N·H·W, C_out·k·k)
        groups = self.groups
        self.accumulate_grad("weight", grouped_gram(saved["x_rows"], g_cols, groups)
                             .reshape(self.weight.shape))
        if self.bias is not None:
            self.accumulate_grad("bias", grad_output.sum((0, 2, 3)))
        w_t = self.weight.reshape(groups, self.in_channels // groups, -1).transpose(1, 2)
        grad_rows = grouped_matmul(g_cols, w_t, groups)                        # (N·H·W, C_in)
        return grad_rows.view(n, h, w, self.in_channels).permute(0, 3, 1, 2)
        ### END SOLUTION

    def extra_repr(self) -> str:
        return conv_extra_repr(self)


TransposeConv2d = ConvTranspose2d
