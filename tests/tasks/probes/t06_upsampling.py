"""Notebook 06: nearest_upsample (T06.1) and nearest_upsample_backward (T06.2)."""
from __future__ import annotations

from torch import Tensor

from scratchnet import upsampling


def nearest_upsample(x: Tensor, scale: tuple[int, int]) -> Tensor:
    """→ what upsampling.nearest_upsample returns."""
    return upsampling.nearest_upsample(x, scale)


def nearest_upsample_backward(grad: Tensor, scale: tuple[int, int]) -> Tensor:
    """→ what upsampling.nearest_upsample_backward returns."""
    return upsampling.nearest_upsample_backward(grad, scale)
