"""The other members of the Xavier and He families, `xavier_normal_` and `kaiming_uniform_`
(torch.nn.init's, the same numbers bit for bit), re-exported by `scratchnet.init`.

Notebook 03 derives the two families and sets `xavier_uniform_` (T03.1) and `kaiming_normal_`
(T03.2) as tasks in init.py; these two are their siblings, kept out of that file so that they
are not a template to copy. `kaiming_uniform_` with a = √5 is every layer's default
(`init.reset_parameters`), so it does not wait for a student's code. Both round as torch does,
operation for operation (the same draws); they only name fewer intermediate values: the two fans
as one sum, the standard deviation inside the bound.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .init import (
    _calculate_correct_fan,
    _calculate_fan_in_and_fan_out,
    _empty,
    calculate_gain,
    normal_,
    uniform_,
)

__all__ = ["kaiming_uniform_", "xavier_normal_"]


def xavier_normal_(tensor: Tensor, gain: float = 1.0,
                   generator: torch.Generator | None = None) -> Tensor:
    """Glorot & Bengio (2010): N(0, std²) with std = gain·√(2/(fan_in + fan_out)). Fills
    `tensor` in place and returns it."""
    fans = sum(_calculate_fan_in_and_fan_out(tensor))          # fan_in + fan_out, an int
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / fans), generator)


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu",
                     generator: torch.Generator | None = None) -> Tensor:
    """He et al. (2015): U(−bound, bound) with bound = √3·gain/√fan (U(−b, b) has variance
    b²/3), gain = calculate_gain(nonlinearity, a), fan = fan_in or fan_out (`mode`). A tensor
    with a zero-size dimension is returned untouched, with torch's warning.

    With a = √5 (and the default nonlinearity "leaky_relu") this is torch.nn's default for
    weights: gain² = 2/(1 + 5) = 1/3, so Var(W) = 1/(3·fan_in) and bound = 1/√fan_in.
    """
    if not _empty(tensor):
        root_fan = math.sqrt(_calculate_correct_fan(tensor, mode))     # torch checks mode first
        bound = math.sqrt(3.0) * (calculate_gain(nonlinearity, a) / root_fan)  # torch's order
        uniform_(tensor, -bound, bound, generator)
    return tensor
