"""The 8 flips/90° rotations of a square (the dihedral group), applied per image in a batch."""
from __future__ import annotations

import torch
from torch import Tensor


def dihedral(x: Tensor, k: int) -> Tensor:
    """x: (..., H, W) → transform k of 0..7: rotate by 90°·(k mod 4), then flip left-right when
    k ≥ 4. Odd k swap H and W."""
    y = torch.rot90(x, k % 4, dims=(-2, -1))
    return torch.flip(y, dims=(-1,)) if k >= 4 else y


def dihedral_inverse(y: Tensor, k: int) -> Tensor:
    """The inverse of `dihedral(·, k)`: dihedral_inverse(dihedral(x, k), k) == x."""
    if k >= 4:
        y = torch.flip(y, dims=(-1,))
    return torch.rot90(y, -(k % 4), dims=(-2, -1))


def random_dihedral(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """x: (N, C, H, W) → each image under its own random transform; when H ≠ W only the four
    that keep the shape (identity, 180°, and the two flips) are drawn. Returns a new tensor."""
    n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    choices = torch.arange(8) if h == w else torch.tensor([0, 2, 4, 6])
    ks = choices[torch.randint(len(choices), (n,), generator=generator)]
    out = torch.empty_like(x)
    for k in choices.tolist():
        sel = (ks == k).nonzero().squeeze(1).to(x.device)
        if len(sel):
            out[sel] = dihedral(x[sel], k)
    return out
