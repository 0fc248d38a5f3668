"""`NearestUpsampling` and `Upsampling` (nearest-neighbour upsampling followed by a convolution).

Upsampling by s then a k×k convolution equals, for each of the s×s output phases, a small
convolution of the *low-resolution* input with a kernel summed from the k×k one (for s = 2,
k = 3: four 2×2 kernels, 2.25× fewer multiply-adds, no upsampled tensor): `PhasePlan` and
`Upsampling.phase_taps`. The textbook implementation, `impl="reference"`, upsamples, then
convolves. The instructor's edition adds the fast path (`impl="fast"`; the student edition has
none): all phases in one stride-1 convolution (`shifted_conv`, no patch matrix), whose output
channels are then interleaved into the output pixels.
"""
from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

from .conv import ConvLayer, conv2d_backward, conv2d_forward, conv_extra_repr
from .im2col import Pair, conv_output_size, pair
### BEGIN FAST PATH
from .im2col import shifted_conv, shifted_conv_backward
### END FAST PATH
from .module import Module
from .validation import expect_grad, expect_input, expect_spatial


def nearest_upsample(x: Tensor, scale: Pair) -> Tensor:
    """x: (N, C, H, W) → (N, C, s_h·H, s_w·W), each pixel repeated into an s_h×s_w block."""
    ### BEGIN SOLUTION
    n, c, h, w = x.shape
    sh, sw = scale
    return x[:, :, :, None, :, None].expand(n, c, h, sh, w, sw).reshape(n, c, h * sh, w * sw)
    ### END SOLUTION


def nearest_upsample_backward(grad: Tensor, scale: Pair) -> Tensor:
    """grad: (N, C, s_h·H, s_w·W) → (N, C, H, W): the sum over each s_h×s_w block."""
    ### BEGIN SOLUTION
    n, c, hs, ws = grad.shape
    sh, sw = scale
    return grad.reshape(n, c, hs // sh, sh, ws // sw, sw).sum((3, 5))
    ### END SOLUTION


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


### BEGIN FAST PATH
@lru_cache(maxsize=64)
def phase_plan(size: int, scale: int, kernel: int, padding: int) -> PhasePlan:
    """PhasePlan(size, scale, kernel, padding), built once per distinct argument tuple."""
    return PhasePlan(size, scale, kernel, padding)
### END FAST PATH


@lru_cache(maxsize=64)
def phase_selection(plans: tuple[PhasePlan, PhasePlan], device: torch.device,
                    dtype: torch.dtype) -> Tensor:
    """(s_h·s_w·t_h·t_w, k_h·k_w): entry [(a, b, t, u), (k, l)] = select_h[a, t, k]·select_w[b, u, l],
    i.e. whether kernel tap (k, l) is summed into tap (t, u) of output phase (a, b)."""
    ph, pw = plans
    both = torch.einsum("atk,bul->abtukl", ph.select, pw.select)
    return both.reshape(-1, both.shape[4] * both.shape[5]).to(device=device, dtype=dtype)


class Upsampling(ConvLayer):
    """Nearest-neighbour upsampling by `scale_factor`, then a Conv2d(in, out, kernel_size, …).

    x: (N, C_in, H, W) → (N, C_out, H_out, W_out) with H_out = conv output size of s·H.
    weight: (C_out, C_in, kh, kw) and bias: (C_out,) are those of the convolution, so the
    state_dict keys are `weight` and `bias`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Pair,
                 scale_factor: int | Pair = 2, stride: int | Pair = 1, padding: int | Pair = 0,
                 dilation: int | Pair = 1, bias: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, 1)
        self.scale_factor = pair(scale_factor, "scale_factor")
        if min(self.kernel_size + self.stride + self.dilation + self.scale_factor) < 1 \
                or min(self.padding) < 0:
            raise ValueError("Upsampling: kernel_size, scale_factor, stride and dilation must be "
                             "≥ 1 and padding ≥ 0")
        self.init_parameters((out_channels, in_channels), bias, device, dtype)

    def forward(self, x: Tensor) -> Tensor:
        expect_input(self, x, 4, self.in_channels)
        h, w = x.shape[2:]
        out_size = tuple(conv_output_size(s * size, k, st, p, d) for s, size, k, st, p, d in zip(
            self.scale_factor, (h, w), self.kernel_size, self.stride, self.padding, self.dilation))
        expect_spatial(self, x, out_size)  # type: ignore[arg-type]
        ### BEGIN FAST PATH
        if self.impl == "fast" and self.stride == (1, 1) and self.dilation == (1, 1):
            return self._forward_phased(x)
        ### END FAST PATH
        up = nearest_upsample(x, self.scale_factor)
        y, cols = conv2d_forward(up, self.weight, self.bias, self.stride, self.padding,
                                 self.dilation, 1, self.impl)
        self.save_for_backward(cols=cols, up_shape=tuple(up.shape), output_shape=tuple(y.shape))
        return y

    def backward(self, grad_output: Tensor) -> Tensor:
        saved = self.saved
        ### BEGIN FAST PATH
        if "plans" in saved:
            return self._accumulate(*self._backward_phased(grad_output))
        ### END FAST PATH
        expect_grad(self, grad_output, saved["output_shape"])
        grad_up, grad_weight, grad_bias = conv2d_backward(
            grad_output, saved["cols"], saved["up_shape"], self.weight, self.stride,
            self.padding, self.dilation, 1, self.impl)
        return self._accumulate(nearest_upsample_backward(grad_up, self.scale_factor),
                                grad_weight, grad_bias)

    def _accumulate(self, grad_input: Tensor, grad_weight: Tensor, grad_bias: Tensor) -> Tensor:
        self.accumulate_grad("weight", grad_weight)
        if self.bias is not None:
            self.accumulate_grad("bias", grad_bias)
        return grad_input

    def phase_taps(self, plans: tuple[PhasePlan, PhasePlan]) -> Tensor:
        """(t_h, t_w, C_in, s_h·s_w·C_out): the summed kernels of all output phases (a, b),
        taps[t, u, c, (a, b, o)] = Σ_{k,l} select_h[a, t, k]·select_w[b, u, l]·weight[o, c, k, l]."""
        c_out, c_in, kh, kw = self.weight.shape
        (sh, sw), (th, tw) = self.scale_factor, (plans[0].taps, plans[1].taps)
        selection = phase_selection(plans, self.weight.device, self.weight.dtype)
        phases = (self.weight.reshape(c_out * c_in, kh * kw) @ selection.t()).view(
            c_out, c_in, sh, sw, th, tw)
        return phases.permute(4, 5, 1, 2, 3, 0).reshape(th, tw, c_in, sh * sw * c_out)

    def phase_weight(self, plans: tuple[PhasePlan, PhasePlan]) -> Tensor:
        """(s_h·s_w·C_out, C_in, taps_h, taps_w): one summed kernel per output phase."""
        return self.phase_taps(plans).permute(3, 2, 0, 1)

    ### BEGIN FAST PATH
    def _forward_phased(self, x: Tensor) -> Tensor:
        """The forward as s_h·s_w phase convolutions of the low-resolution x (module docstring)."""
        n, _, h, w = x.shape
        sh, sw = self.scale_factor
        plans = (phase_plan(h, sh, self.kernel_size[0], self.padding[0]),
                 phase_plan(w, sw, self.kernel_size[1], self.padding[1]))
        (top, hp), (left, wp) = ((p.pad_before, size + p.pad_before + p.pad_after)
                                 for p, size in zip(plans, (h, w)))
        xp = x.new_zeros((n, hp, wp, self.in_channels))                 # padded, channels-last
        xp[:, top:top + h, left:left + w] = x.permute(0, 2, 3, 1)
        rows = xp.view(-1, self.in_channels)
        taps = self.phase_taps(plans)                                     # (t_h, t_w, C_in, ·)
        bias = None if self.bias is None else self.bias.repeat(sh * sw)
        z = shifted_conv(rows, wp, taps, bias, (1, 1)).view(n, hp, wp, sh, sw, self.out_channels)
        y = x.new_empty((n, plans[0].out, plans[1].out, self.out_channels))
        for a, b, rows_, cols_ in self._phase_slices(plans):
            y[:, a::sh, b::sw] = z[:, rows_, cols_, a, b]
        self.save_for_backward(rows=rows, taps=taps, plans=plans, input_shape=tuple(x.shape))
        return y.permute(0, 3, 1, 2)

    def _backward_phased(self, grad_output: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The adjoint of `_forward_phased` → (dx, dW, db)."""
        saved = self.saved
        plans, (sh, sw), c_out = saved["plans"], self.scale_factor, self.out_channels
        n, c_in, h, w = saved["input_shape"]
        expect_grad(self, grad_output, (n, c_out, plans[0].out, plans[1].out))
        (top, hp), (left, wp) = ((p.pad_before, size + p.pad_before + p.pad_after)
                                 for p, size in zip(plans, (h, w)))
        grad_z = grad_output.new_zeros((n, hp, wp, sh, sw, c_out))
        grad_cl = grad_output.permute(0, 2, 3, 1)
        for a, b, rows_, cols_ in self._phase_slices(plans):
            grad_z[:, rows_, cols_, a, b] = grad_cl[:, a::sh, b::sw]
        grad_rows, grad_taps = shifted_conv_backward(
            grad_z.view(-1, sh * sw * c_out), saved["rows"], wp, saved["taps"], (1, 1))
        th, tw = grad_taps.shape[:2]
        grad_phases = grad_taps.view(th, tw, c_in, sh, sw, c_out).permute(5, 2, 3, 4, 0, 1)
        selection = phase_selection(plans, grad_taps.device, grad_taps.dtype)
        grad_weight = (grad_phases.reshape(c_out * c_in, -1) @ selection).view(
            self.weight.shape)
        grad_bias = grad_output.sum((0, 2, 3))
        grad_input = grad_rows.view(n, hp, wp, c_in)[:, top:top + h, left:left + w] \
            .permute(0, 3, 1, 2)
        return grad_input, grad_weight, grad_bias

    @staticmethod
    def _phase_slices(plans: tuple[PhasePlan, PhasePlan]):
        """(a, b, rows of z, columns of z) for every output phase that has pixels."""
        ph, pw = plans
        for a in range(ph.scale):
            for b in range(pw.scale):
                if ph.count[a] and pw.count[b]:
                    yield (a, b, slice(ph.offset[a], ph.offset[a] + ph.count[a]),
                           slice(pw.offset[b], pw.offset[b] + pw.count[b]))

    ### END FAST PATH

    def extra_repr(self) -> str:
        return conv_extra_repr(self) + f", scale_factor={self.scale_factor}"
