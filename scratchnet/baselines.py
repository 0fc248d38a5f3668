"""Classical denoisers to compare the network with: non-local means and total variation
(scikit-image), their parameters tuned on part of the validation set against the clean images.

    results = evaluate_baselines(noisy, clean)   # {"non-local means": {"psnr": ..., "h": ...}, ...}
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import Tensor

from .metrics import psnr
from .validation import check_image_pair, check_images

NLM_PATCH_SIZE = 5
NLM_PATCH_DISTANCE = 6
NLM_H_OVER_SIGMA = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2)
TV_WEIGHTS = (0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2)


def _per_image(x: Tensor, denoise: Callable[[np.ndarray], np.ndarray]) -> Tensor:
    """x: (N, C, H, W) → denoise applied to each (H, W, C) float64 image, same dtype/device."""
    images = x.detach().cpu().to(torch.float64).permute(0, 2, 3, 1).numpy()
    out = np.stack([denoise(img) for img in images]) if len(images) else images
    return torch.from_numpy(out).permute(0, 3, 1, 2).clamp(0, 1).to(x.device, x.dtype)


def nlm_denoise(noisy: Tensor, h: float, sigma: float | None = None) -> Tensor:
    """noisy: (N, C, H, W) float in [0, 1] → denoised, same shape: scikit-image's fast
    non-local means per image (5×5 patches searched within ±6 pixels). h: filter strength;
    sigma: the noise's standard deviation, if known (subtracted from the patch distances)."""
    from skimage.restoration import denoise_nl_means

    check_images(noisy, "nlm_denoise", uint8=False, channels=None, allow_empty=True)
    return _per_image(noisy, lambda img: denoise_nl_means(
        img, h=h, sigma=0.0 if sigma is None else sigma, patch_size=NLM_PATCH_SIZE,
        patch_distance=NLM_PATCH_DISTANCE, fast_mode=True, channel_axis=-1))


def tv_denoise(noisy: Tensor, weight: float) -> Tensor:
    """noisy: (N, C, H, W) float in [0, 1] → denoised, same shape: scikit-image's Chambolle
    total-variation denoising per image; a larger weight smooths more."""
    from skimage.restoration import denoise_tv_chambolle

    check_images(noisy, "tv_denoise", uint8=False, channels=None, allow_empty=True)
    return _per_image(noisy, lambda img: denoise_tv_chambolle(img, weight=weight,
                                                              channel_axis=-1))


def tune(method: Callable[[Tensor, float], Tensor], noisy: Tensor, clean: Tensor,
         grid: Iterable[float]) -> tuple[float, float]:
    """→ (the parameter of `grid` whose method(noisy, parameter) has the highest PSNR against
    clean, that PSNR in dB); noisy, clean: (N, C, H, W) float in [0, 1]."""
    best = None
    for value in grid:
        score = float(psnr(method(noisy, value), clean))
        if best is None or score > best[1]:
            best = (float(value), score)
    if best is None:
        raise ValueError("tune: the grid of parameters is empty")
    return best


def _unit(x: Tensor) -> Tensor:
    return x.to(torch.float32) / 255 if x.dtype == torch.uint8 else x


def evaluate_baselines(noisy: Tensor, clean: Tensor, tune_on: int = 200) -> dict[str, dict]:
    """noisy, clean: (N, 3, H, W), uint8 in 0..255 or float in [0, 1] → PSNRs (dB) on all N
    images of the noisy input and of each method with its parameter tuned on the first
    `tune_on` images: {"noisy input": {"psnr"}, "non-local means": {"psnr", "h", "sigma"},
    "total variation": {"psnr", "weight"}}. NLM's sigma is the noise level measured on the
    tuning images, and h is searched as multiples of it."""
    check_image_pair(noisy, clean, "evaluate_baselines", names=("noisy", "clean"),
                     channels=None)
    noisy, clean = _unit(noisy), _unit(clean)
    if not 1 <= tune_on:
        raise ValueError(f"evaluate_baselines: tune_on must be at least 1, got {tune_on}")
    tune_noisy, tune_clean = noisy[:tune_on], clean[:tune_on]
    sigma = float((tune_noisy - tune_clean).to(torch.float64).std())

    def nlm(x: Tensor, h: float) -> Tensor:
        return nlm_denoise(x, h, sigma)

    h, _ = tune(nlm, tune_noisy, tune_clean, [r * sigma for r in NLM_H_OVER_SIGMA])
    weight, _ = tune(tv_denoise, tune_noisy, tune_clean, TV_WEIGHTS)
    return {
        "noisy input": {"psnr": float(psnr(noisy, clean))},
        "non-local means": {"psnr": float(psnr(nlm(noisy, h), clean)), "h": h, "sigma": sigma},
        "total variation": {"psnr": float(psnr(tv_denoise(noisy, weight), clean)),
                            "weight": weight},
    }
