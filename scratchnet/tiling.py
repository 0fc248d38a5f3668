"""Denoise images of any size in overlapping tiles, with memory bounded by the tile size.

A convolutional network's output pixel depends only on the input pixels within its receptive
field. So an image can be cut into tiles, each run through the network with a margin of context
around it at least as wide as the receptive field's radius, and each tile's margin cropped from the
result: every kept pixel then saw exactly the context it sees when the whole image is denoised at
once, and the tiles join without a seam. Tiles start at multiples of the network's `multiple`, so
its stride-2 layers sample the same grid as on the whole image, and the image is padded (by
reflection at the bottom and right, as `pad_to_multiple` does) through index arithmetic, one tile
at a time, never as a whole.

    margin = tile_margin(net)                  # receptive-field radius, rounded up to `multiple`
    for window, (core, crop) in tiles(h, w, tile=512, margin=margin, multiple=net.multiple): …
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import torch
from torch import Tensor

from .activations import Activation
from .containers import Concat, Identity, Residual, Sequential
from .conv import Conv2d
from .conv_transpose import ConvTranspose2d
from .module import Module
from .pooling import MaxPool2d
from .progress import progress_bar
from .upsampling import NearestUpsampling, Upsampling

POINTWISE = (Activation, Identity)


@dataclass(frozen=True)
class _Field:
    """What a feature map's pixel depends on, per axis: `scale` input pixels per feature pixel,
    and `radius`: how far beyond its own scale×scale block of input pixels it looks."""
    scale: Fraction
    radius: Fraction

    def conv(self, kernel: int, stride: int, padding: int, dilation: int = 1) -> _Field:
        """padding: before the first pixel (the padding after it changes only the size)."""
        reach = dilation * (kernel - 1) + 1
        grow = max(padding, reach - padding - stride, 0)
        return _Field(self.scale * stride, self.radius + self.scale * grow)

    def upsample(self, factor: int) -> _Field:
        return _Field(self.scale / factor, self.radius + self.scale * Fraction(factor - 1, factor))

    def transposed(self, kernel: int, stride: int, padding: int, dilation: int = 1) -> _Field:
        reach = dilation * (kernel - 1) + 1
        fine = self.scale / stride
        grow = max(fine * (reach - 1 - padding), fine * padding + self.scale - fine, 0)
        return _Field(fine, self.radius + grow)


def _walk(module: Module, fields: tuple[_Field, _Field]) -> tuple[_Field, _Field]:
    """The fields (rows, columns) after `module`, given those before it."""
    if isinstance(module, Sequential):
        for child in module:
            fields = _walk(child, fields)
        return fields
    if isinstance(module, (Concat, Residual)):
        branches = [_walk(child, fields) for child in module.children()]
        if isinstance(module, Residual):
            branches.append(fields)
        return tuple(_Field(branches[0][a].scale, max(b[a].radius for b in branches))
                     for a in range(2))  # type: ignore[return-value]
    if isinstance(module, POINTWISE):
        return fields
    if isinstance(module, Upsampling):
        return tuple(f.upsample(s).conv(k, st, p, d) for f, s, k, st, p, d in zip(
            fields, module.scale_factor, module.kernel_size, module.stride, module.padding,
            module.dilation))  # type: ignore[return-value]
    if isinstance(module, NearestUpsampling):
        factors = module.scale_factor
        factors = factors if isinstance(factors, tuple) else (factors, factors)
        if module.size is not None or len(factors) != 2 or \
                not all(float(s).is_integer() for s in factors):
            raise ValueError(f"receptive_radius: cannot tell how far {module._short_repr()} "
                             "looks (only whole-number scale factors are known); give the tile "
                             "margin yourself")
        return tuple(f.upsample(int(s)) for f, s in zip(fields, factors))  # type: ignore
    if isinstance(module, ConvTranspose2d):
        return tuple(f.transposed(k, st, p, d) for f, k, st, p, d in zip(
            fields, module.kernel_size, module.stride, module.padding,
            module.dilation))  # type: ignore[return-value]
    if isinstance(module, (Conv2d, MaxPool2d)):
        dilation = getattr(module, "dilation", (1, 1))
        before = module.pads()[::2] if isinstance(module, Conv2d) else module.padding
        return tuple(f.conv(k, st, p, d) for f, k, st, p, d in zip(
            fields, module.kernel_size, module.stride, before,
            dilation))  # type: ignore[return-value]
    raise ValueError(f"receptive_radius: cannot tell how far {type(module).__name__} looks; "
                     "give the tile margin yourself")


def receptive_radius(net: Module) -> int:
    """How many pixels beyond itself an output pixel of `net` may depend on, in rows or columns
    (the larger): 6 for the course network, 36 for the default U-Net. Computed from the layers'
    kernel sizes, strides, paddings and upsampling factors; a ValueError for a layer it does not
    know."""
    start = _Field(Fraction(1), Fraction(0))
    rows, cols = _walk(net, (start, start))
    return math.ceil(max(rows.radius, cols.radius))


def tile_margin(net: Module) -> int:
    """The context kept around each tile: the receptive-field radius rounded up to a multiple
    of net.multiple, so that every tile starts on the network's sampling grid."""
    multiple = getattr(net, "multiple", 1)
    return -(-receptive_radius(net) // multiple) * multiple


@dataclass(frozen=True)
class Tile:
    """One tile, per axis as (start, stop) in the image padded to a multiple: `window`, the input
    the network sees; `core`, the pixels it keeps (cropped to the unpadded image)."""
    window: tuple[tuple[int, int], tuple[int, int]]
    core: tuple[tuple[int, int], tuple[int, int]]


def _spans(size: int, padded: int, tile: int, margin: int, multiple: int) \
        -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """[(window, core)] along one axis of `size` pixels padded to `padded`: cores of at most
    `tile` pixels (multiples of `multiple`, as even as that allows) covering 0..size."""
    count = math.ceil(padded / tile)
    step = -(-math.ceil(padded / count) // multiple) * multiple
    spans = []
    for start in range(0, padded, step):
        stop = min(start + step, padded)
        if start >= size:
            break
        window = (max(0, start - margin), min(padded, stop + margin))
        spans.append((window, (start, min(stop, size))))
    return spans


def plan_tiles(h: int, w: int, tile: int, margin: int, multiple: int = 1) -> list[Tile]:
    """The tiles of an h×w image: cores of at most tile×tile pixels (tile rounded down to a
    multiple of `multiple`, at least `multiple`), each window the core plus `margin` pixels of
    context on every side where the (padded) image has them."""
    if tile < 1 or margin < 0 or multiple < 1 or margin % multiple:
        raise ValueError(f"plan_tiles: need tile ≥ 1 and margin ≥ 0 a multiple of {multiple}, "
                         f"got tile={tile}, margin={margin}")
    tile = max(multiple, tile - tile % multiple)
    rows = _spans(h, h + -h % multiple, tile, margin, multiple)
    cols = _spans(w, w + -w % multiple, tile, margin, multiple)
    return [Tile((rw, cw), (rc, cc)) for rw, rc in rows for cw, cc in cols]


def _index(start: int, stop: int, size: int, reflect: bool) -> slice | Tensor:
    """Source indices of padded positions start..stop of an axis of `size` pixels padded at the
    end by reflection (or by repeating the edge), as F.pad does."""
    if stop <= size:
        return slice(start, stop)
    i = torch.arange(start, stop)
    beyond = i >= size
    i[beyond] = (2 * (size - 1) - i[beyond]) if reflect else size - 1
    return i


def _take(x: Tensor, rows: slice | Tensor, cols: slice | Tensor) -> Tensor:
    x = x[:, :, rows] if isinstance(rows, slice) else x.index_select(2, rows)
    return x[:, :, :, cols] if isinstance(cols, slice) else x.index_select(3, cols)


def run_tiled(forward: Callable[[Tensor], Tensor], x: Tensor, out: Tensor, *, tile: int,
              margin: int, multiple: int, progress: bool = False,
              desc: str = "denoising") -> Tensor:
    """out[...] = forward applied to x tile by tile. x: (N, C, H, W), any dtype; forward: a
    window of x padded to `multiple`, (N, C, h, w) in x's dtype → (N, C', h, w); out:
    (N, C', H, W), written in place and returned. The pixels kept from each window are at least
    `margin` away from its edges, unless they are on the image's edge."""
    h, w = x.shape[-2:]
    plan = plan_tiles(h, w, tile, margin, multiple)
    with progress_bar(len(plan), desc, progress and len(plan) > 1, unit="tile") as bar:
        for t in plan:
            y = forward(window_of(x, t.window, multiple))
            (r0, _), (c0, _) = t.window
            (a0, a1), (b0, b1) = t.core
            out[:, :, a0:a1, b0:b1] = y[:, :, a0 - r0:a1 - r0, b0 - c0:b1 - c0].to(out.device)
            bar.update(1)
    return out


def window_of(x: Tensor, window: tuple[tuple[int, int], tuple[int, int]], multiple: int) \
        -> Tensor:
    """x: (N, C, H, W) → the window (rows, cols) of `pad_to_multiple(x, multiple)`, computed
    from x without padding all of it."""
    h, w = x.shape[-2:]
    reflect = -h % multiple < h and -w % multiple < w
    (r0, r1), (c0, c1) = window
    return _take(x, _index(r0, r1, h, reflect), _index(c0, c1, w, reflect))
