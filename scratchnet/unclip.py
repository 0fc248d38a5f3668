"""Undo the bias that clipping puts into Noise2Noise targets.

A noisy uint8 image is clip(x + n, 0, 1) (on the 0..1 scale), not x + n. Trained with MSE on such
targets, a network learns their mean, E[clip(x + n)], which lies above x near black and below it
near white: where the noise would have gone below 0 it is cut off, and only the upper half of it
is averaged. For Gaussian noise N(0, σ²), as clip(Y, 0, 1) = max(Y, 0) − max(Y − 1, 0),

    m(x) = E[clip(x + σz, 0, 1)] = P(x) − P(x − 1),   P(μ) = E[max(Y, 0)] = μ·Φ(μ/σ) + σ·φ(μ/σ)
    for Y ~ N(μ, σ²) (Φ, φ: the standard normal's distribution and density),

and m is strictly increasing on [0, 1] (from m(0) ≈ 0.4σ to m(1) = 1 − m(0)). So the network's
output y ≈ m(x) is turned back into x by solving m(x) = y: `unclip(y, σ)`. σ can be measured from
noisy pairs alone (`pair_noise_sigma`), so the correction still needs no clean image.
"""
from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

_TABLE = (1 << 18) + 1


def _positive_part_mean(mu: Tensor, sigma: float) -> Tensor:
    """mu: (…) float64 means, sigma > 0 → E[max(Y, 0)] for Y ~ N(mu, sigma²), elementwise, (…).
    Φ is `torch.special.ndtr`; φ(t) = exp(−t²/2)/√(2π)."""
    ### BEGIN SOLUTION
    a = mu / sigma
    return mu * torch.special.ndtr(a) + sigma * torch.exp(-0.5 * a * a) / math.sqrt(2 * math.pi)
    ### END SOLUTION


def clipped_mean(x: Tensor, sigma: float) -> Tensor:
    """x: (…) clean values on the 0..1 scale → m(x) = E[clip(x + σz, 0, 1)], z ~ N(0, 1), (…)
    float64; x clamped to [0, 1] when sigma is 0."""
    if sigma == 0:
        return x.clamp(0, 1)
    x = x.to(torch.float64)
    ### BEGIN SOLUTION
    return _positive_part_mean(x, sigma) - _positive_part_mean(x - 1, sigma)
    ### END SOLUTION


@functools.lru_cache(maxsize=8)
def _table(sigma: float, device: torch.device) -> tuple[Tensor, Tensor]:
    """(x, clipped_mean(x, sigma)) on _TABLE evenly spaced x in [0, 1], float64: built once per
    noise level and device, as a tiled image calls `unclip` once per tile."""
    grid = torch.linspace(0, 1, _TABLE, dtype=torch.float64, device=device)
    return grid, clipped_mean(grid, sigma)


def unclip(y: Tensor, sigma: float) -> Tensor:
    """y: (…) estimates of E[clip(x + σz, 0, 1)] (a Noise2Noise network's output, 0..1) → the x
    in [0, 1] with clipped_mean(x, σ) = y, y's dtype; values below m(0) give 0, above m(1) give 1.
    m is tabulated on 2¹⁸ + 1 evenly spaced x and inverted by linear interpolation between the
    two table entries around each y: exact to about 1e-9, in one search per value."""
    if not sigma >= 0:
        raise ValueError(f"unclip: sigma must be ≥ 0, got {sigma}")
    if sigma == 0:
        return y.clamp(0, 1)
    grid, table = _table(float(sigma), y.device)
    target = y.to(torch.float64).contiguous()
    i = torch.searchsorted(table, target).clamp_(1, _TABLE - 1)
    below, above = table[i - 1], table[i]
    x = grid[i - 1] + (target - below) / (above - below) * (grid[1] - grid[0])
    x = x.clamp_(0, 1).masked_fill_(target <= table[0], 0).masked_fill_(target >= table[-1], 1)
    return x.to(y.dtype)


def pair_noise_sigma(a: Tensor, b: Tensor) -> float:
    """a, b: two noisy copies (N, C, H, W) of the same images, uint8 or float in 0..255, with
    independent Gaussian noise → σ on the 0..1 scale, from var(a − b) = 2σ². Clipping shrinks
    a − b near black and white, so only pairs whose mean (a + b)/2 lies at least 3σ from both
    ends count (or the middle fifth of the range, when 3σ leaves less); as a − b is independent
    of a + b for Gaussian noise, selecting on the mean does not bias the estimate. σ starts as
    the estimate over all values and is refined three times."""
    if not isinstance(a, Tensor) or not isinstance(b, Tensor) or a.shape != b.shape \
            or a.numel() == 0:
        shapes = [tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__ for t in (a, b)]
        raise ValueError(f"pair_noise_sigma: needs two non-empty tensors of one shape, got "
                         f"{shapes[0]} and {shapes[1]}")
    if a.is_floating_point() and max(float(a.max()), float(b.max())) <= 1:
        raise ValueError("pair_noise_sigma: the images look like floats in 0..1; give them in "
                         "0..255 (uint8 or float), as they are stored")
    a, b = a.to(torch.float64).flatten() / 255, b.to(torch.float64).flatten() / 255
    diff, mean = a - b, (a + b) / 2
    sigma = float(diff.std()) / math.sqrt(2)
    for _ in range(3):
        margin = min(3 * sigma, 0.4)
        keep = (mean >= margin) & (mean <= 1 - margin)
        if keep.sum() < 2:
            break
        sigma = float(diff[keep].std()) / math.sqrt(2)
    return sigma
