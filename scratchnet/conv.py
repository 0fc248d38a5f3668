"""`Conv2d`: 2-D cross-correlation lowered to one matrix product (im2col), backward via col2im;
`ConvLayer`: the constructor it shares with ConvTranspose2d and Upsampling. The instructor's
edition adds fast paths: channels-last patches, and 3×3 stride-1 kernels by Winograd F(2×2, 3×3)
(`winograd.py`, whose transformed tiles are kept for backward instead of the patch matrix)."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .im2col import Pair, col2im, conv_output_size, grouped_gram, grouped_matmul, im2col, pair
from .init import reset_parameters
from .module import Module
from .padding import MODES, Pads, pad, pad_backward
from .validation import (
    expect_grad,
    expect_input,
    expect_spatial,
    unbatched_backward,
    unbatched_forward,
)

### BEGIN FAST PATH
from .im2col import col2im_strided, im2col_strided, windows_overlap
from .impl import lever_on
from .winograd import WinogradSaved, winograd_applies, winograd_backward, winograd_forward
### END FAST PATH


def conv2d_forward(x: Tensor, weight: Tensor, bias: Tensor | None, stride: Pair, padding: Pair,
                   dilation: Pair, groups: int, impl: str = "fast") -> tuple[Tensor, Tensor]:
    """x: (N, C_in, H, W), weight: (C_out, C_in/g, kh, kw), bias: (C_out,) or None
    → (y: (N, C_out, H_out, W_out), cols: (N·H_out·W_out, C_in·kh·kw), kept for backward).

    y[n, :, i, j] = W · patch(n, i, j) + b, all patches at once: `cols @ Wᵀ + b` with W as a
    (C_out, C_in·kh·kw) matrix (`weight_matrices`; with groups, one product per group:
    `grouped_matmul`). y may be returned as a permuted view of (N, H_out, W_out, C_out).
    """
    n, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    ho = conv_output_size(h, kh, stride[0], padding[0], dilation[0])
    wo = conv_output_size(w, kw, stride[1], padding[1], dilation[1])
    ### BEGIN FAST PATH
    if impl == "fast" and lever_on("winograd") and winograd_applies(weight, stride, dilation,
                                                                    groups, n * ho * wo):
        return winograd_forward(x, weight, bias, padding)
    if impl == "fast" and groups == 1 and lever_on("channels_last"):
        return conv2d_forward_channels_last(x, weight, bias, stride, padding, dilation)
    ### END FAST PATH
    ### BEGIN SOLUTION
    cols = im2col(x, (kh, kw), stride, padding, dilation, impl)
    w_t = weight_matrices(weight, groups).transpose(1, 2)           # (g, C_in/g·kh·kw, C_out/g)
    out = grouped_matmul(cols, w_t, groups, bias)                   # (N·H_out·W_out, C_out)
    return out.view(n, ho, wo, c_out).permute(0, 3, 1, 2), cols
    ### END SOLUTION


def conv2d_backward(grad_out: Tensor, cols: Tensor, input_shape: tuple[int, ...], weight: Tensor,
                    stride: Pair, padding: Pair, dilation: Pair, groups: int, impl: str = "fast",
                    ) -> tuple[Tensor, Tensor, Tensor]:
    """grad_out: (N, C_out, H_out, W_out), cols: what `conv2d_forward` returned
    → (dx: input_shape, dW: weight.shape, db: (C_out,)).

    With G = grad_out as a (N·H_out·W_out, C_out) matrix: dW = Gᵀ·cols (`grouped_gram`),
    db = Σ_rows G (a sum: the bias is added at every position), dx = col2im(G·W).
    """
    ### BEGIN FAST PATH
    if isinstance(cols, WinogradSaved):
        return winograd_backward(grad_out, cols, input_shape, padding)
    if impl == "fast" and groups == 1 and lever_on("channels_last"):
        return conv2d_backward_channels_last(grad_out, cols, input_shape, weight, stride,
                                             padding, dilation)
    ### END FAST PATH
    c_out = weight.shape[0]
    ### BEGIN SOLUTION
    g = grad_out.permute(0, 2, 3, 1).reshape(-1, c_out)
    grad_weight = grouped_gram(g, cols, groups).reshape(weight.shape)
    grad_bias = g.sum(0)
    dcols = grouped_matmul(g, weight_matrices(weight, groups), groups)
    grad_input = col2im(dcols, input_shape, tuple(weight.shape[2:]), stride, padding, dilation, impl)
    return grad_input, grad_weight, grad_bias
    ### END SOLUTION


### BEGIN FAST PATH
def conv2d_forward_channels_last(x: Tensor, weight: Tensor, bias: Tensor | None, stride: Pair,
                                 padding: Pair, dilation: Pair) -> tuple[Tensor, Tensor]:
    """`conv2d_forward` for groups = 1 with patches ordered channels-last, (kh, kw, C_in), and W
    to match: the patch copy moves runs of kw·C_in contiguous values."""
    n, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    ho = conv_output_size(h, kh, stride[0], padding[0], dilation[0])
    wo = conv_output_size(w, kw, stride[1], padding[1], dilation[1])
    cols = im2col_strided(x, (kh, kw), stride, padding, dilation, channels_last=True)
    out = grouped_matmul(cols, weight_matrix_channels_last(weight).t().unsqueeze(0), 1, bias)
    return out.view(n, ho, wo, c_out).permute(0, 3, 1, 2), cols


def conv2d_backward_channels_last(grad_out: Tensor, cols: Tensor, input_shape: tuple[int, ...],
                                  weight: Tensor, stride: Pair, padding: Pair, dilation: Pair,
                                  input_grad: bool = True) -> tuple[Tensor | None, Tensor, Tensor]:
    """The backward of `conv2d_forward_channels_last` (dx None, not computed, without
    `input_grad`). dW is computed as (colsᵀ·G)ᵀ, a permuted view: MKL's product with the long
    sum inside and the (kh·kw·C_in, C_out) result is up to 30 % faster than Gᵀ·cols here. With
    stride 1 and overlapping windows, dx is itself a stride-1 convolution
    (`input_gradient_as_convolution`) instead of col2im's kh·kw strided additions."""
    c_out, c_in, kh, kw = weight.shape
    g = grad_out.permute(0, 2, 3, 1).reshape(-1, c_out)
    grad_weight = (cols.t() @ g).view(kh, kw, c_in, c_out).permute(3, 2, 0, 1)
    if not input_grad:
        return None, grad_weight, g.sum(0)
    if lever_on("flipped_input_grad") and stride == (1, 1) and windows_overlap(
            (kh, kw), stride, dilation) and all(
            p <= d * (k - 1) for p, d, k in zip(padding, dilation, (kh, kw))):
        grad_input = input_gradient_as_convolution(grad_out, weight, padding, dilation)
    else:
        dcols = g @ weight_matrix_channels_last(weight)
        grad_input = col2im_strided(dcols, input_shape, (kh, kw), stride, padding, dilation,
                                    channels_last=True)
    return grad_input, grad_weight, g.sum(0)


def input_gradient_as_convolution(grad_out: Tensor, weight: Tensor, padding: Pair,
                                  dilation: Pair) -> Tensor:
    """∂L/∂x of a stride-1 convolution, grad_out: (N, C_out, H_out, W_out) → (N, C_in, H, W).

    x[i] meets W[u] in output i − d·u, so ∂L/∂x[i] = Σ_u Wᵀ[u]·g[i − d·u]: the correlation of
    g, padded by d·(k − 1) − p, with the kernel flipped and its channels swapped. Needs
    p ≤ d·(k − 1)."""
    kh, kw = weight.shape[2:]
    pad = (dilation[0] * (kh - 1) - padding[0], dilation[1] * (kw - 1) - padding[1])
    flipped = weight.flip(2, 3).transpose(0, 1)
    return conv2d_forward_channels_last(grad_out, flipped, None, (1, 1), pad, dilation)[0]


def weight_matrix_channels_last(weight: Tensor) -> Tensor:
    """weight: (C_out, C_in, kh, kw) → (C_out, kh·kw·C_in), columns in `im2col_strided`'s
    channels-last order (kh, kw, C_in)."""
    return weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1)


def conv2d_parameter_grads(grad_out: Tensor, cols: Tensor, input_shape: tuple[int, ...],
                           weight: Tensor, stride: Pair, padding: Pair, dilation: Pair,
                           groups: int) -> tuple[Tensor, Tensor]:
    """(dW, db) of the fast `conv2d_forward`, without dx: for a layer whose input needs no
    gradient (`needs_input_grad` False)."""
    if isinstance(cols, WinogradSaved):
        return winograd_backward(grad_out, cols, input_shape, padding, input_grad=False)[1:]
    if groups == 1 and lever_on("channels_last"):               # cols as the forward made them
        return conv2d_backward_channels_last(grad_out, cols, input_shape, weight, stride,
                                             padding, dilation, input_grad=False)[1:]
    g = grad_out.permute(0, 2, 3, 1).reshape(-1, weight.shape[0])
    return grouped_gram(g, cols, groups).reshape(weight.shape), g.sum(0)
### END FAST PATH


def weight_matrices(weight: Tensor, groups: int) -> Tensor:
    """weight: (C_out, C_in/g, kh, kw) → (g, C_out/g, C_in/g·kh·kw), columns in im2col's order
    (C_in, kh, kw)."""
    return weight.reshape(groups, weight.shape[0] // groups, -1)


class ConvLayer(Module):
    """The constructor that Conv2d, ConvTranspose2d and Upsampling share: channels divisible by
    groups, the hyper-parameters as pairs, `impl`, and (`init_parameters`) weight and bias
    initialised as torch.nn does. The forward and backward a subclass writes for batches
    (N, C, H, W) also take unbatched (C, H, W) inputs, as torch's: they are wrapped by
    `unbatched_forward` and `unbatched_backward` when the subclass is defined."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__:
            cls.forward = unbatched_forward(cls.__dict__["forward"])  # type: ignore[method-assign]
        if "backward" in cls.__dict__:
            cls.backward = unbatched_backward(cls.__dict__["backward"])  # type: ignore[method-assign]

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Pair,
                 stride: int | Pair, padding: int | Pair, dilation: int | Pair,
                 groups: int) -> None:
        super().__init__()
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"{type(self).__name__}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must both be divisible by groups ({groups})")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.padding = pair(padding, "padding")
        self.dilation = pair(dilation, "dilation")
        self.impl = "fast"

    def init_parameters(self, channels: tuple[int, int], bias: bool,
                        device: torch.device | str | None, dtype: torch.dtype | None) -> None:
        """Register weight: (*channels, kh, kw) and bias: (C_out,) or None, drawn as torch.nn's."""
        factory = {"device": device, "dtype": dtype}
        self.register_parameter("weight", torch.empty(*channels, *self.kernel_size, **factory))
        self.register_parameter("bias", torch.empty(self.out_channels, **factory) if bias else None)
        reset_parameters(self.weight, self.bias)

    def _accumulate(self, grad_input: Tensor | None, grad_weight: Tensor,
                    grad_bias: Tensor) -> Tensor | None:
        """Add grad_weight (and grad_bias, with a bias) to the parameters' gradients; returns
        grad_input."""
        self.accumulate_grad("weight", grad_weight)
        if self.bias is not None:
            self.accumulate_grad("bias", grad_bias)
        return grad_input


class Conv2d(ConvLayer):
    """2-D convolution with torch.nn.Conv2d's signature, parameters and initialisation.

    x: (N, C_in, H, W) → y: (N, C_out, H_out, W_out), or unbatched (C_in, H, W) → (C_out, H_out,
    W_out), H_out = ⌊(H + top + bottom − dilation·(kernel − 1) − 1) / stride⌋ + 1 (likewise
    W_out) with `pads` (top, bottom, left, right) from `padding`: an int or pair for both sides,
    'valid' for none, or 'same' (stride 1) for H_out = H. padding_mode 'zeros' leaves the
    padding to `conv2d_forward` when both sides are equal; otherwise x is padded explicitly
    (`padding.pad`: 'zeros', 'reflect', 'replicate', 'circular') and convolved without padding.
    weight: (C_out, C_in/groups, kh, kw), bias: (C_out,).
    Set `impl = "reference"` to run the textbook unfold/fold formulation instead of the fast one.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Pair,
                 stride: int | Pair = 1, padding: int | Pair | str = 0, dilation: int | Pair = 1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                 ) -> None:
        named = isinstance(padding, str)
        super().__init__(in_channels, out_channels, kernel_size, stride, 0 if named else padding,
                         dilation, groups)
        if min(self.kernel_size + self.stride + self.dilation) < 1 or min(self.padding) < 0:
            raise ValueError(f"Conv2d: kernel_size {self.kernel_size}, stride {self.stride} and "
                             f"dilation {self.dilation} must be ≥ 1, padding {self.padding} ≥ 0")
        if named and padding not in ("same", "valid"):
            raise ValueError(f"Conv2d: invalid padding string {padding!r}, should be 'same' or "
                             "'valid'")
        if padding == "same" and self.stride != (1, 1):
            raise ValueError(f"Conv2d: padding='same' is not supported for strided convolutions "
                             f"(stride {self.stride}); torch refuses it too")
        if padding_mode not in MODES:
            raise ValueError(f"Conv2d: padding_mode must be one of {', '.join(map(repr, MODES))}, "
                             f"got padding_mode={padding_mode!r}")
        if named:
            self.padding = padding
        self.padding_mode = padding_mode
        self.init_parameters((out_channels, in_channels // groups), bias, device, dtype)

    def pads(self) -> Pads:
        """(top, bottom, left, right): `padding` on both sides, none for 'valid', and for 'same'
        dilation·(kernel − 1) in all, the odd one at the bottom (right), as torch."""
        if self.padding == "valid":
            return (0, 0, 0, 0)
        if self.padding == "same":
            (th, tw) = (d * (k - 1) for k, d in zip(self.kernel_size, self.dilation))
            return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        (ph, pw) = self.padding
        return (ph, ph, pw, pw)

    @property
    def _reversed_padding_repeated_twice(self) -> list[int]:
        """torch's name for `pads` in F.pad's order: [left, right, top, bottom]."""
        top, bottom, left, right = self.pads()
        return [left, right, top, bottom]

    def _split_padding(self) -> tuple[Pads, Pair]:
        """(the pads that `padding.pad` adds with padding_mode, the zero padding (ph, pw) left to
        `conv2d_forward`): the convolution's own when it can (zeros, equal on both sides)."""
        top, bottom, left, right = pads = self.pads()
        if self.padding_mode == "zeros" and (top, left) == (bottom, right):
            return (0, 0, 0, 0), (top, left)
        return pads, (0, 0)

    def forward(self, x: Tensor) -> Tensor:
        expect_input(self, x, 4, self.in_channels)
        expect_spatial(self, x, self.output_size(x.shape[2], x.shape[3]))
        pads, padding = self._split_padding()
        xp = x
        if any(pads) or self.padding_mode != "zeros":
            xp = pad(x, pads, self.padding_mode, self._short_repr())
        y, cols = conv2d_forward(xp, self.weight, self.bias, self.stride, padding,
                                 self.dilation, self.groups, self.impl)
        self.save_for_backward(cols=cols, input_shape=tuple(x.shape), padded_shape=tuple(xp.shape),
                               pads=pads, padding=padding, output_shape=tuple(y.shape))
        return y

    def backward(self, grad_output: Tensor) -> Tensor | None:
        saved = self.saved
        expect_grad(self, grad_output, saved["output_shape"])
        ### BEGIN FAST PATH
        if self.impl == "fast" and not self.needs_input_grad:
            return self._accumulate(None, *conv2d_parameter_grads(
                grad_output, saved["cols"], saved["padded_shape"], self.weight, self.stride,
                saved["padding"], self.dilation, self.groups))
        ### END FAST PATH
        grad_padded, grad_weight, grad_bias = conv2d_backward(
            grad_output, saved["cols"], saved["padded_shape"], self.weight, self.stride,
            saved["padding"], self.dilation, self.groups, self.impl)
        self.accumulate_grad("weight", grad_weight)
        if self.bias is not None:
            self.accumulate_grad("bias", grad_bias)
        return pad_backward(grad_padded, saved["input_shape"], saved["pads"], self.padding_mode)

    def output_size(self, h: int, w: int) -> Pair:
        top, bottom, left, right = self.pads()
        return (conv_output_size(h + top + bottom, self.kernel_size[0], self.stride[0], 0,
                                 self.dilation[0]),
                conv_output_size(w + left + right, self.kernel_size[1], self.stride[1], 0,
                                 self.dilation[1]))

    def extra_repr(self) -> str:
        return conv_extra_repr(self)


def conv_extra_repr(m: Module) -> str:
    """torch's repr of a convolution: only the arguments that differ from their defaults."""
    s = f"{m.in_channels}, {m.out_channels}, kernel_size={m.kernel_size}, stride={m.stride}"
    if m.padding != (0, 0):
        s += f", padding={m.padding}"
    if m.dilation != (1, 1):
        s += f", dilation={m.dilation}"
    if getattr(m, "output_padding", (0, 0)) != (0, 0):
        s += f", output_padding={m.output_padding}"
    if m.groups != 1:
        s += f", groups={m.groups}"
    if m.bias is None:
        s += ", bias=False"
    if getattr(m, "padding_mode", "zeros") != "zeros":
        s += f", padding_mode={m.padding_mode}"
    return s
