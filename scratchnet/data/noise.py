"""`add_noise`: synthetic noise models on uint8 images, the result rounded and clipped to uint8."""
from __future__ import annotations

import torch
from torch import Tensor

NOISE_PARAMETER = {"gaussian": "sigma", "poisson": "peak", "salt_pepper": "amount"}
NOISE_MODELS = tuple(NOISE_PARAMETER)
DEFAULT_SIGMA = 25 / 255
DEFAULT_PEAK = 40.0
DEFAULT_AMOUNT = 0.05
_CHUNK = 1 << 20


def _noisy_values(x: Tensor, noise: str, sigma: float, peak: float, amount: float,
                  generator: torch.Generator | None) -> Tensor:
    """x: float32 in 0..255 → noisy float32 in 0..255 (not yet rounded or clipped)."""
    if noise == "gaussian":
        return torch.randn(x.shape, generator=generator, device=x.device).mul_(255 * sigma).add_(x)
    if noise == "poisson":
        return torch.poisson(x * (peak / 255), generator=generator) * (255 / peak)
    u = torch.rand(x.shape, generator=generator, device=x.device)
    return torch.where(u < amount / 2, 0.0, torch.where(u < amount, 255.0, x))


def add_noise(clean_uint8: Tensor, noise: str = "gaussian", sigma: float = DEFAULT_SIGMA,
              generator: torch.Generator | None = None, *, peak: float | None = None,
              amount: float | None = None) -> Tensor:
    """clean_uint8: uint8 images of any shape, e.g. (N, 3, H, W) → uint8 noisy copy, same shape.

    noise="gaussian": additive N(0, sigma²) on the 0..1 scale (the default 25/255 puts the noisy
        input near 20.7 dB PSNR, like the course's validation data);
    noise="poisson": shot noise, x ~ Poisson(peak · clean) / peak on the 0..1 scale
        (default peak 40: smaller is noisier);
    noise="salt_pepper": each value becomes 0 or 255 (half each) with probability `amount`
        (default 0.05).
    Noise is drawn from `generator` (torch's global one when None), in chunks to bound memory.
    """
    if not isinstance(clean_uint8, Tensor) or clean_uint8.dtype != torch.uint8:
        got = clean_uint8.dtype if isinstance(clean_uint8, Tensor) else type(clean_uint8).__name__
        raise ValueError(f"add_noise: expected a uint8 tensor of images (0..255), got {got}")
    if noise not in NOISE_MODELS:
        raise ValueError(f"add_noise: unknown noise {noise!r}; choose one of {NOISE_MODELS}")
    if noise != "gaussian" and sigma != DEFAULT_SIGMA:
        raise ValueError(f"add_noise: sigma applies to gaussian noise only, not to {noise!r}")
    if noise != "poisson" and peak is not None:
        raise ValueError(f"add_noise: peak applies to poisson noise only, not to {noise!r}")
    if noise != "salt_pepper" and amount is not None:
        raise ValueError(f"add_noise: amount applies to salt_pepper noise only, not to {noise!r}")
    peak = DEFAULT_PEAK if peak is None else peak
    amount = DEFAULT_AMOUNT if amount is None else amount
    if not sigma >= 0:
        raise ValueError(f"add_noise: sigma must be >= 0, got {sigma}")
    if not peak > 0:
        raise ValueError(f"add_noise: peak must be > 0, got {peak}")
    if not 0 <= amount <= 1:
        raise ValueError(f"add_noise: amount must lie in [0, 1], got {amount}")
    flat = clean_uint8.contiguous().view(-1)
    out = torch.empty_like(flat)
    for start in range(0, flat.numel(), _CHUNK):
        x = flat[start:start + _CHUNK].to(torch.float32)
        y = _noisy_values(x, noise, sigma, peak, amount, generator)
        out[start:start + _CHUNK] = y.round_().clamp_(0, 255).to(torch.uint8)
    return out.view(clean_uint8.shape)
