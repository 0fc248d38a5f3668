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

import math
from functools import lru_cache
from typing import Any

import torch
from torch import Tensor

from .conv import ConvLayer, conv2d_backward, conv2d_forward, conv_extra_repr
from .im2col import Pair, conv_output_size, pair, select_pixels, select_pixels_backward
### BEGIN FAST PATH
from .im2col import shifted_conv, shifted_conv_backward
from .impl import lever_on
### END FAST PATH
from .module import Module
from .validation import expect_grad, expect_input, expect_spatial, shape_str


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


def nearest_source_index(in_size: int, out_size: int,
                         scale_factor: float | None = None) -> Tensor:
    """(out_size,) int64: the input index that each output index copies along one axis, by
    torch's rule for mode='nearest' (ATen's `nearest_idx`): min(⌊o·r⌋, in_size − 1) with
    r = 1/scale_factor when a scale factor is given, else in_size/out_size, where r and o·r are
    rounded to float32 as torch computes them (so scale 2.5 reads 1/2.5, not in/out, and
    whole-number scales 41, 47, 55, … read one pixel early at some block starts). out_size =
    in_size copies (o) and out_size = 2·in_size halves (o // 2) exactly, whatever the factor."""
    o = torch.arange(out_size)
    if out_size == in_size:
        return o
    if out_size == 2 * in_size:
        return o // 2
    f32 = torch.float32
    if scale_factor is not None:
        r = torch.tensor(1.0 / scale_factor, dtype=f32)
    else:
        r = torch.tensor(float(in_size), dtype=f32) / torch.tensor(float(out_size), dtype=f32)
    return (o.to(f32) * r).floor().long().clamp(max=in_size - 1)


@lru_cache(maxsize=256)
def nearest_axis(in_size: int, out_size: int,
                 scale_factor: float | None) -> tuple[Tensor, int | None]:
    """(`nearest_source_index`, s): s is the whole number with index = o // s (a block repeat,
    what `nearest_upsample` computes), or None. Cached: do not modify the index tensor."""
    index = nearest_source_index(in_size, out_size, scale_factor)
    repeat = out_size // in_size if out_size % in_size == 0 else None
    if repeat is not None and not torch.equal(index, torch.arange(out_size) // repeat):
        repeat = None
    return index, repeat


class NearestUpsampling(Module):
    """torch.nn.UpsamplingNearest2d, i.e. nn.Upsample(mode='nearest'): x: (N, C, H, W) →
    (N, C, H_out, W_out), each output pixel a copy of one input pixel.

    Give exactly one of `size` ((H_out, W_out), or an int for both) and `scale_factor` (a
    number or (s_h, s_w): H_out = ⌊H·s_h⌋; a factor of 0 counts as none, as in torch). Output
    row o copies input row `nearest_source_index(H, H_out, s_h)` (r = 1/s_h, or H/H_out given a
    size), columns alike. Where that is a whole-number repeat o // s (s = 2, 3, …), forward and
    backward are the block repeat and block sums of `nearest_upsample` and
    `nearest_upsample_backward`; otherwise an index gather (`select_pixels`) whose backward
    adds each output's gradient onto the pixel it copied. As torch, a 3-D input is a batch of
    signals (N, C, L), resized along L only: not an unbatched image. Setting the attribute
    `recompute_scale_factor = True` (as on torch's module) computes the size from the scale
    factor, then indexes with r = in/out.

    torch's backward always uses this rule, and so does its CPU forward when H_out + W_out ≤ 128
    or the input is channels-last with C > 3; otherwise (and for 3-D inputs) its forward uses
    another kernel that differs in rare cases (a scale such as 1.001 that keeps the size, float64
    rounding): there torch's gradient is not its own forward's derivative, and scratchnet's
    forward is the one its gradient belongs to.
    """

    def __init__(self, size: int | tuple[int, ...] | None = None,
                 scale_factor: float | tuple[float, ...] | None = None) -> None:
        super().__init__()
        self.size = size
        if isinstance(scale_factor, tuple):
            self.scale_factor = tuple(float(factor) for factor in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.recompute_scale_factor: bool | None = None
        self._check_arguments()

    def _check_arguments(self) -> None:
        """torch's conditions (which torch checks at the first forward): exactly one of size
        and scale_factor, one or two values, sizes whole numbers ≥ 1, factors finite and > 0."""
        name = type(self).__name__
        if self.size is not None and self.scale_factor is not None:
            raise ValueError(f"{name}: only one of size or scale_factor should be defined, got "
                             f"size={self.size!r} and scale_factor={self.scale_factor!r}")
        if self.size is None and self.scale_factor is None:
            raise ValueError(f"{name}: either size or scale_factor should be defined")
        what, value = self._given()
        values = tuple(value) if isinstance(value, (tuple, list)) else (value,)
        if what == "size" and not all(isinstance(v, int) for v in values):
            raise TypeError(f"{name}: size must be an int or a pair of ints, got {value!r}")
        if not 1 <= len(values) <= 2:
            raise ValueError(f"{name}: {what}={value!r} must be one value or one per spatial "
                             "dimension (H, W)")
        if what == "size" and min(values) < 1:
            raise ValueError(f"{name}: size={value!r} must be ≥ 1")
        if what == "scale_factor" and not all(0 < v < math.inf for v in values):
            raise ValueError(f"{name}: scale_factor={value!r} must be finite and > 0")

    def _given(self) -> tuple[str, Any]:
        """("size", size) or ("scale_factor", scale_factor): the one the layer was built with."""
        return ("size", self.size) if self.size is not None else ("scale_factor", self.scale_factor)

    def _axes(self, x: Tensor) -> list[tuple[int, int, float | None]]:
        """(input size, output size, scale factor for `nearest_source_index`) per resized axis
        of x: H and W, or L for a 3-D input."""
        spatial = tuple(x.shape[2:])
        what, value = self._given()
        values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * len(spatial)
        if len(values) != len(spatial):
            raise ValueError(f"{self._short_repr()}: {what}={value!r} has {len(values)} values "
                             f"but input of shape {shape_str(x.shape)} has {len(spatial)} "
                             "spatial dimension(s) (as in torch, a 3-D input is (N, C, L))")
        if what == "size":
            if self.recompute_scale_factor:
                raise ValueError(f"{self._short_repr()}: recompute_scale_factor is not "
                                 "meaningful with an explicit size")
            return [(n, o, None) for n, o in zip(spatial, values)]
        recompute = bool(self.recompute_scale_factor)
        return [(n, math.floor(n * f), None if recompute else f) for n, f in zip(spatial, values)]

    def forward(self, x: Tensor) -> Tensor:
        expect_input(self, x, None)
        if x.dim() not in (3, 4):
            raise ValueError(f"{self._short_repr()}: expected a 4-D (N, C, H, W) or 3-D (N, C, L) "
                             f"input, got input of shape {shape_str(x.shape)}")
        axes = self._axes(x)
        if min(n for n, _, _ in axes) < 1 or min(o for _, o, _ in axes) < 1:
            raise ValueError(f"{self._short_repr()}: input of shape {shape_str(x.shape)} gives "
                             "an output of size " + "×".join(str(o) for _, o, _ in axes)
                             + "; input and output sizes must be ≥ 1")
        xb = x if x.dim() == 4 else x.unsqueeze(2)                # (N, C, L) → (N, C, 1, L)
        if x.dim() == 3:
            axes.insert(0, (1, 1, None))
        (rows, s_h), (cols, s_w) = (nearest_axis(*axis) for axis in axes)
        if s_h is not None and s_w is not None:                     # a block repeat
            y = nearest_upsample(xb, (s_h, s_w)) if (s_h, s_w) != (1, 1) else xb.clone()
            saved = {"scale": (s_h, s_w)}
        else:
            rows, cols = rows.to(x.device), cols.to(x.device)
            y = select_pixels(xb, rows, cols)
            saved = {"rows": rows, "cols": cols, "input_size": tuple(xb.shape[2:])}
        y = y if x.dim() == 4 else y.squeeze(2)
        self.save_for_backward(output_shape=tuple(y.shape), **saved)
        return y

    def backward(self, grad_output: Tensor) -> Tensor:
        saved = self.saved
        expect_grad(self, grad_output, saved["output_shape"])
        signals = grad_output.dim() == 3                          # (N, C, L): a row of height 1
        grad = grad_output.unsqueeze(2) if signals else grad_output
        if "scale" in saved:
            grad_input = nearest_upsample_backward(grad, saved["scale"])
        else:
            grad_input = select_pixels_backward(grad, saved["input_size"], saved["rows"],
                                                saved["cols"])
        return grad_input.squeeze(2) if signals else grad_input

    def extra_repr(self) -> str:
        info = (f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None
                else f"size={self.size!r}")
        return info + ", mode='nearest'"


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


def phases_interleaved(z: Tensor, plans: tuple[PhasePlan, PhasePlan]) -> Tensor | None:
    """z: (N, H_p, W_p, s_h, s_w, C), every phase's output at its own offset → a view of z as
    (N, H_out/s_h, s_h, W_out/s_w, s_w, C), i.e. the output y (N, H_out, W_out, C) with its
    pixels in place, so that y is one copy from z and not one per phase. Output row s·i + a is
    z's row i + offset[a], phase a; when every phase has the same count and offset[a] = offset[0]
    + a·δ, stepping a moves δ rows and one phase: a stride. None when the plans are not so."""
    size, stride = [z.shape[0]], [z.stride(0)]
    start = z.storage_offset()
    for axis, plan in enumerate(plans):
        step = plan.offset[1] - plan.offset[0] if plan.scale > 1 else 0
        if len(set(plan.count)) != 1 or any(o != plan.offset[0] + a * step
                                            for a, o in enumerate(plan.offset)):
            return None
        row, phase = z.stride(1 + axis), z.stride(3 + axis)
        size += [plan.count[0], plan.scale]
        stride += [row, row * step + phase]
        start += plan.offset[0] * row
    return z.as_strided((*size, z.shape[5]), (*stride, z.stride(5)), start)
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

    x: (N, C_in, H, W) → (N, C_out, H_out, W_out), or unbatched (C_in, H, W) → (C_out, H_out,
    W_out), with H_out = conv output size of s·H. weight: (C_out, C_in, kh, kw) and bias:
    (C_out,) are those of the convolution, so the state_dict keys are `weight` and `bias`.
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
        if (self.impl == "fast" and lever_on("phases") and self.stride == (1, 1)
                and self.dilation == (1, 1)):
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
        interleaved = phases_interleaved(z, plans)
        if interleaved is not None:
            y.view(interleaved.shape).copy_(interleaved)
        else:
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
        interleaved = phases_interleaved(grad_z, plans)
        if interleaved is not None:
            interleaved.copy_(grad_cl.reshape(interleaved.shape))
        else:
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
