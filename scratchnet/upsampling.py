"""`NearestUpsampling` and `Upsampling` (nearest-neighbour upsampling followed by a convolution).

Upsampling by s then a k×k convolution equals, for each of the s×s output phases, a small
convolution of the *low-resolution* input with a kernel summed from the k×k one (for s = 2,
k = 3: four 2×2 kernels, 2.25× fewer multiply-adds, no upsampled tensor). That is the "fast"
implementation; "reference" upsamples, then convolves.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .conv import conv2d_backward, conv2d_forward, conv_extra_repr
from .im2col import Pair, conv_output_size, pair
from .init import reset_parameters
from .module import Module
from .validation import expect_grad, expect_input, expect_spatial


def nearest_upsample(x: Tensor, scale: Pair) -> Tensor:
    """x: (N, C, H, W) → (N, C, s_h·H, s_w·W), each pixel repeated into an s_h×s_w block."""
    n, c, h, w = x.shape
    sh, sw = scale
    return x[:, :, :, None, :, None].expand(n, c, h, sh, w, sw).reshape(n, c, h * sh, w * sw)


def nearest_upsample_backward(grad: Tensor, scale: Pair) -> Tensor:
    """grad: (N, C, s_h·H, s_w·W) → (N, C, H, W): the sum over each s_h×s_w block."""
    n, c, hs, ws = grad.shape
    sh, sw = scale
    return grad.reshape(n, c, hs // sh, sh, ws // sw, sw).sum((3, 5))


class NearestUpsampling(Module):
    """x: (N, C, H, W) → (N, C, s_h·H, s_w·W); scale_factor: int or (s_h, s_w)."""

    def __init__(self, scale_factor: int | Pair = 2) -> None:
        super().__init__()
        self.scale_factor = pair(scale_factor, "scale_factor")
        if min(self.scale_factor) < 1:
            raise ValueError(f"NearestUpsampling: scale_factor {self.scale_factor} must be ≥ 1")

    def forward(self, x: Tensor) -> Tensor:
        expect_input(self, x, 4)
        y = nearest_upsample(x, self.scale_factor)
        self.save_for_backward(output_shape=tuple(y.shape))
        return y

    def backward(self, grad_output: Tensor) -> Tensor:
        expect_grad(self, grad_output, self.saved["output_shape"])
        return nearest_upsample_backward(grad_output, self.scale_factor)

    def extra_repr(self) -> str:
        return f"scale_factor={self.scale_factor}"


class PhasePlan:
    """How one spatial axis of upsample(s)+conv(k, padding p) splits into s phase convolutions.

    Output index o = s·i + a reads upsampled rows o + t − p, i.e. input rows i + ⌊(a + t − p)/s⌋,
    t = 0…k−1. Phase a therefore needs input rows i + lo[a] … i + lo[a] + taps − 1, and
    `select[a, j, t] = 1` when kernel tap t lands on the j-th of them.
    """

    def __init__(self, size: int, scale: int, kernel: int, padding: int) -> None:
        self.scale = scale
        self.out = scale * size + 2 * padding - kernel + 1
        first = [(a - padding) // scale for a in range(scale)]
        last = [(a + kernel - 1 - padding) // scale for a in range(scale)]
        self.taps = max(hi - lo + 1 for lo, hi in zip(first, last))
        self.lo = first
        self.select = torch.zeros(scale, self.taps, kernel)
        for a in range(scale):
            for t in range(kernel):
                self.select[a, (a + t - padding) // scale - first[a], t] = 1
        self.count = [len(range(a, self.out, scale)) for a in range(scale)]
        lo_min = min(first)
        self.pad_before = -lo_min
        needed = max(c - 1 + lo for c, lo in zip(self.count, first)) + self.taps  # exclusive end
        self.pad_after = max(0, needed - size)
        self.offset = [lo - lo_min for lo in first]


class Upsampling(Module):
    """Nearest-neighbour upsampling by `scale_factor`, then a Conv2d(in, out, kernel_size, …).

    x: (N, C_in, H, W) → (N, C_out, H_out, W_out) with H_out = conv output size of s·H.
    weight: (C_out, C_in, kh, kw) and bias: (C_out,) are those of the convolution, so the
    state_dict keys are `weight` and `bias`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Pair,
                 scale_factor: int | Pair = 2, stride: int | Pair = 1, padding: int | Pair = 0,
                 dilation: int | Pair = 1, bias: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, 1
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.scale_factor = pair(scale_factor, "scale_factor")
        self.stride = pair(stride, "stride")
        self.padding = pair(padding, "padding")
        self.dilation = pair(dilation, "dilation")
        if min(self.kernel_size + self.stride + self.dilation + self.scale_factor) < 1 \
                or min(self.padding) < 0:
            raise ValueError("Upsampling: kernel_size, scale_factor, stride and dilation must be "
                             "≥ 1 and padding ≥ 0")
        self.impl = "fast"
        factory = {"device": device, "dtype": dtype}
        self.register_parameter("weight", torch.empty(
            out_channels, in_channels, *self.kernel_size, **factory))
        self.register_parameter("bias", torch.empty(out_channels, **factory) if bias else None)
        reset_parameters(self.weight, self.bias)

    def _phased(self) -> bool:
        """The phase decomposition applies to stride 1, dilation 1."""
        return self.impl == "fast" and self.stride == (1, 1) and self.dilation == (1, 1)

    def forward(self, x: Tensor) -> Tensor:
        expect_input(self, x, 4, self.in_channels)
        n, _, h, w = x.shape
        sh, sw = self.scale_factor
        out_size = tuple(conv_output_size(s * size, k, st, p, d) for s, size, k, st, p, d in zip(
            self.scale_factor, (h, w), self.kernel_size, self.stride, self.padding, self.dilation))
        expect_spatial(self, x, out_size)  # type: ignore[arg-type]
        if not self._phased():
            up = nearest_upsample(x, self.scale_factor)
            y, cols = conv2d_forward(up, self.weight, self.bias, self.stride, self.padding,
                                     self.dilation, 1, self.impl)
            self.save_for_backward(cols=cols, up_shape=tuple(up.shape), output_shape=tuple(y.shape))
            return y
        plans = (PhasePlan(h, sh, self.kernel_size[0], self.padding[0]),
                 PhasePlan(w, sw, self.kernel_size[1], self.padding[1]))
        xp = x.new_zeros((n, self.in_channels, h + plans[0].pad_before + plans[0].pad_after,
                          w + plans[1].pad_before + plans[1].pad_after))
        xp[:, :, plans[0].pad_before:plans[0].pad_before + h,
           plans[1].pad_before:plans[1].pad_before + w] = x
        bias = None if self.bias is None else self.bias.repeat(sh * sw)
        z, cols = conv2d_forward(xp, self.phase_weight(plans), bias, (1, 1), (0, 0), (1, 1), 1)
        z = z.reshape(n, sh, sw, self.out_channels, z.shape[2], z.shape[3])
        y = x.new_empty((n, self.out_channels, plans[0].out, plans[1].out))
        for a, b, rows, cols_ in self._phase_slices(plans):
            y[:, :, a::sh, b::sw] = z[:, a, b, :, rows, cols_]
        self.save_for_backward(cols=cols, plans=plans, padded_shape=tuple(xp.shape),
                               z_shape=tuple(z.shape), input_shape=tuple(x.shape),
                               output_shape=tuple(y.shape))
        return y

    def backward(self, grad_output: Tensor) -> Tensor:
        saved = self.saved
        expect_grad(self, grad_output, saved["output_shape"])
        if "plans" not in saved:
            grad_up, grad_weight, grad_bias = conv2d_backward(
                grad_output, saved["cols"], saved["up_shape"], self.weight, self.stride,
                self.padding, self.dilation, 1, self.impl)
            grad_input = nearest_upsample_backward(grad_up, self.scale_factor)
        else:
            plans, (sh, sw) = saved["plans"], self.scale_factor
            n, _, _, c_out, hz, wz = saved["z_shape"]
            grad_z = grad_output.new_zeros((n, hz, wz, sh, sw, c_out)).permute(0, 3, 4, 5, 1, 2)
            for a, b, rows, cols_ in self._phase_slices(plans):
                grad_z[:, a, b, :, rows, cols_] = grad_output[:, :, a::sh, b::sw]
            grad_z = grad_z.reshape(n, sh * sw * c_out, hz, wz)
            grad_xp, grad_phase_weight, grad_bias = conv2d_backward(
                grad_z, saved["cols"], saved["padded_shape"], self.phase_weight(plans),
                (1, 1), (0, 0), (1, 1), 1)
            grad_weight = torch.einsum("atk,bul,aboctu->ockl",
                                       plans[0].select.to(grad_xp), plans[1].select.to(grad_xp),
                                       grad_phase_weight.reshape(sh, sw, c_out, *grad_phase_weight
                                                                 .shape[1:]))
            grad_bias = grad_bias.reshape(sh * sw, c_out).sum(0)
            h, w = saved["input_shape"][2:]
            grad_input = grad_xp[:, :, plans[0].pad_before:plans[0].pad_before + h,
                                 plans[1].pad_before:plans[1].pad_before + w]
        self.accumulate_grad("weight", grad_weight)
        if self.bias is not None:
            self.accumulate_grad("bias", grad_bias)
        return grad_input

    def phase_weight(self, plans: tuple[PhasePlan, PhasePlan]) -> Tensor:
        """(s_h·s_w·C_out, C_in, taps_h, taps_w): one summed kernel per output phase."""
        sel_h, sel_w = (p.select.to(self.weight) for p in plans)
        phase = torch.einsum("atk,bul,ockl->aboctu", sel_h, sel_w, self.weight)
        return phase.reshape(-1, self.in_channels, plans[0].taps, plans[1].taps)

    @staticmethod
    def _phase_slices(plans: tuple[PhasePlan, PhasePlan]):
        """(a, b, rows of z, columns of z) for every output phase that has pixels."""
        ph, pw = plans
        for a in range(ph.scale):
            for b in range(pw.scale):
                if ph.count[a] and pw.count[b]:
                    yield (a, b, slice(ph.offset[a], ph.offset[a] + ph.count[a]),
                           slice(pw.offset[b], pw.offset[b] + pw.count[b]))

    def extra_repr(self) -> str:
        return conv_extra_repr(self) + f", scale_factor={self.scale_factor}"
