"""Notebook 09: the clipped mean m(s) (T09.1), and unclip, which inverts it."""
from __future__ import annotations

from torch import Tensor

from scratchnet import unclip


def positive_part_mean(mu: Tensor, sigma: float) -> Tensor:
    """→ what _positive_part_mean(mu, sigma) returned."""
    return unclip._positive_part_mean(mu, sigma)


def clipped_mean(x: Tensor, sigma: float) -> Tensor:
    """→ what clipped_mean(x, sigma) returned."""
    return unclip.clipped_mean(x, sigma)


def unclip_clipped_mean(x: Tensor, sigma: float) -> Tensor:
    """→ unclip(clipped_mean(x, sigma), sigma): x again when clipped_mean is right."""
    return unclip.unclip(unclip.clipped_mean(x, sigma), sigma)
