"""Explicit padding of an image batch and its adjoint, as torch.nn.functional.pad's modes:
'zeros', 'reflect' (mirrored at the edge pixel, which is not repeated: …c b | a b c…),
'replicate' (the edge pixel repeated: …a a | a b c…) and 'circular' (wrapped around:
…b c | a b c…). `Conv2d` uses them for its `padding_mode`.

Every padded pixel is zero or a copy of one input pixel, so padding is a gather: rows, then
columns, each picked by `source_index` (`select_pixels`). Its adjoint is a scatter-add: the
gradient of every pixel of the padded image is added onto the input pixel it copied (a border
pixel's onto the pixel it mirrors, repeats or wraps), and the gradient of a zero is dropped.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .im2col import select_pixels, select_pixels_backward, window
from .validation import shape_str

Pads = tuple[int, int, int, int]
"""(top, bottom, left, right): how many rows or columns to add on each side."""
MODES = ("zeros", "reflect", "replicate", "circular")


def source_index(size: int, before: int, after: int, mode: str,
                 device: torch.device | None = None) -> Tensor:
    """(before + size + after,): the input index that each position of one padded axis copies,
    for the modes other than 'zeros'."""
    i = torch.arange(-before, size + after, device=device)
    if mode == "reflect":
        i = i.abs()                                         # mirrored at 0 …
        return torch.where(i < size, i, 2 * (size - 1) - i)  # … and at size − 1
    if mode == "replicate":
        return i.clamp(0, size - 1)
    return i.remainder(size)


def check_pads(shape: tuple[int, ...], pads: Pads, mode: str, where: str = "pad") -> None:
    """Raise ValueError, starting with `where`, unless `mode` is one of MODES and can pad an
    input of `shape` (…, H, W) by `pads` ≥ 0: as torch, reflect padding must be smaller than the
    input and circular padding at most its size (it wraps around once)."""
    if mode not in MODES:
        raise ValueError(f"{where}: padding_mode must be one of "
                         f"{', '.join(map(repr, MODES))}, got {mode!r}")
    h, w = shape[-2:]
    for amount, side, size, extent in zip(pads, ("top", "bottom", "left", "right"),
                                          (h, h, w, w), ("height", "height", "width", "width")):
        if amount < 0:
            raise ValueError(f"{where}: padding {amount} at the {side} must be ≥ 0")
        if mode == "reflect" and amount >= size or mode == "circular" and amount > size:
            rule = "smaller than" if mode == "reflect" else "at most"
            raise ValueError(f"{where}: padding {amount} at the {side} must be {rule} the "
                             f"input {extent} {size} with padding_mode={mode!r} (input of shape "
                             f"{shape_str(shape)})")


def pad(x: Tensor, pads: Pads, mode: str, where: str = "pad") -> Tensor:
    """x: (N, C, H, W) → (N, C, top + H + bottom, left + W + right): x with `pads` rows and
    columns added by `mode`; x itself when there are none. A ValueError naming `where` for what
    `check_pads` refuses."""
    check_pads(tuple(x.shape), pads, mode, where)
    if not any(pads):
        return x
    top, bottom, left, right = pads
    h, w = x.shape[-2:]
    if mode == "zeros":
        return window(x, (-top, -left), (top + h + bottom, left + w + right))
    return select_pixels(x, source_index(h, top, bottom, mode, x.device),
                         source_index(w, left, right, mode, x.device))


def pad_backward(grad: Tensor, input_shape: tuple[int, ...], pads: Pads, mode: str) -> Tensor:
    """grad: (N, C, top + H + bottom, left + W + right), the gradient of `pad`'s output →
    (N, C, H, W) = input_shape: each pixel's gradient added onto the input pixel it copied,
    columns first, then rows ('zeros': the border cropped)."""
    if not any(pads):
        return grad
    top, bottom, left, right = pads
    h, w = input_shape[-2:]
    if mode == "zeros":
        return window(grad, (top, left), (h, w))
    return select_pixels_backward(grad, (h, w), source_index(h, top, bottom, mode, grad.device),
                                  source_index(w, left, right, mode, grad.device))
