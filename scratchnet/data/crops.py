"""`random_crops`: square crops of one image, taken at several random scales."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .images import downscale

MAX_FACTOR = 6.0
LEVELS = 8
MIN_SIDE_IN_CROPS = 1.5


def random_crops(image: Tensor, count: int, generator: torch.Generator, size: int = 32,
                 max_factor: float = MAX_FACTOR, levels: int = LEVELS) -> Tensor:
    """image: uint8 (3, H, W), H, W ≥ size → uint8 (count, 3, size, size).

    The image is downscaled by `levels` random factors, log-uniform in [1, max_factor] and small
    enough to keep the shorter side at least 1.5·size; each crop picks a level, then a position,
    uniformly. Crops of one level are gathered with one indexing operation into the view of
    all its size×size windows.
    """
    h, w = image.shape[-2:]
    if min(h, w) < size:
        raise ValueError(f"random_crops: image of shape (3, {h}, {w}) is smaller than the "
                         f"{size}×{size} crops")
    out = torch.empty((count, 3, size, size), dtype=torch.uint8)
    if count == 0:
        return out
    top = max(1.0, min(max_factor, min(h, w) / (MIN_SIDE_IN_CROPS * size)))
    n_levels = min(levels, count)
    factors = torch.exp(torch.rand(n_levels, generator=generator, dtype=torch.float64)
                        * math.log(top))
    level_of = torch.randint(n_levels, (count,), generator=generator)
    for level, factor in enumerate(factors.tolist()):
        sel = (level_of == level).nonzero().squeeze(1)
        if not len(sel):
            continue
        scaled = downscale(image, factor, min_side=size)
        sh, sw = scaled.shape[-2:]
        ys = torch.randint(sh - size + 1, (len(sel),), generator=generator)
        xs = torch.randint(sw - size + 1, (len(sel),), generator=generator)
        windows = scaled.permute(1, 2, 0).unfold(0, size, 1).unfold(1, size, 1)
        out[sel] = windows[ys, xs]
    return out
