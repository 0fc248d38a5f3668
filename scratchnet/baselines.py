"""Classical denoisers to compare the network with: non-local means and total variation
(scikit-image), and BM3D (the `bm3d` package; its colour version, CBM3D), their parameters tuned
or measured on part of the validation set against the clean images.

    results = evaluate_baselines(noisy, clean)   # {"non-local means": {"psnr": ..., "h": ...}, ...}
    results = evaluate_baselines(noisy, clean, methods=("nlm", "tv", "bm3d"), jobs=4,
                                 progress=True)

Each method denoises image by image; with jobs > 1 the images are shared out among that many
worker processes, each limited to one thread, and the results are the same as with jobs=1.
BM3D is slow: about a second per 32×32 image on one CPU core.
"""
from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from .metrics import psnr
from .unclip import unclip
from .validation import check_image_pair, check_images

if TYPE_CHECKING:
    from typing_extensions import Self

NLM_PATCH_SIZE = 5
NLM_PATCH_DISTANCE = 6
NLM_H_OVER_SIGMA = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2)
TV_WEIGHTS = (0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2)
METHODS = {"nlm": "non-local means", "tv": "total variation", "bm3d": "BM3D"}
DEFAULT_METHODS = ("nlm", "tv")


def _single_threaded():
    """A context in which numpy's BLAS and OpenMP pools use one thread, so that a result never
    depends on how many threads computed it (nothing, if threadpoolctl is missing)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:                                        # pragma: no cover
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


_worker_limits = None


def _worker_init() -> None:
    """In each worker process: one thread everywhere (threadpool_limits applies on creation)."""
    global _worker_limits
    torch.set_num_threads(1)
    _worker_limits = _single_threaded()


class Runner:
    """Maps a per-image function over images, in this process (jobs=1) or in a pool of `jobs`
    worker processes (started on first use, with `spawn`, so nothing of this process's thread
    pools is inherited), in order; `bar`: a tqdm bar advanced by one per image, or None."""

    def __init__(self, jobs: int = 1, bar=None) -> None:
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
        self.jobs, self.bar, self._pool = jobs, bar, None

    def map(self, fn: Callable[[np.ndarray], np.ndarray], images: Sequence[np.ndarray]) \
            -> Iterator[np.ndarray]:
        if self.jobs == 1 or len(images) < 2:
            with _single_threaded():
                for image in images:
                    yield fn(image)
                    self._tick()
            return
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(self.jobs, initializer=_worker_init,
                                             mp_context=multiprocessing.get_context("spawn"))
        chunk = max(1, min(16, len(images) // (4 * self.jobs)))
        for result in self._pool.map(fn, images, chunksize=chunk):
            yield result
            self._tick()

    def _tick(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _per_image(x: Tensor, denoise: Callable[[np.ndarray], np.ndarray],
               runner: Runner | None = None) -> Tensor:
    """x: (N, C, H, W) → denoise applied to each (H, W, C) float64 image, same dtype/device."""
    images = x.detach().cpu().to(torch.float64).permute(0, 2, 3, 1).numpy()
    if runner is None:
        with Runner() as own:
            return _per_image(x, denoise, own)
    out = np.stack(list(runner.map(denoise, list(images)))) if len(images) else images
    return torch.from_numpy(out).permute(0, 3, 1, 2).clamp(0, 1).to(x.device, x.dtype)


def _nlm_image(img: np.ndarray, h: float, sigma: float) -> np.ndarray:
    from skimage.restoration import denoise_nl_means

    return denoise_nl_means(img, h=h, sigma=sigma, patch_size=NLM_PATCH_SIZE,
                            patch_distance=NLM_PATCH_DISTANCE, fast_mode=True, channel_axis=-1)


def _tv_image(img: np.ndarray, weight: float) -> np.ndarray:
    from skimage.restoration import denoise_tv_chambolle

    return denoise_tv_chambolle(img, weight=weight, channel_axis=-1)


def _bm3d_image(img: np.ndarray, sigma: float) -> np.ndarray:
    import bm3d

    if img.shape[-1] == 3:
        return bm3d.bm3d_rgb(img, sigma_psd=sigma)
    return np.stack([bm3d.bm3d(img[..., c], sigma_psd=sigma) for c in range(img.shape[-1])],
                    axis=-1)


def nlm_denoise(noisy: Tensor, h: float, sigma: float | None = None, *, jobs: int = 1) -> Tensor:
    """noisy: (N, C, H, W) float in [0, 1] → denoised, same shape: scikit-image's fast
    non-local means per image (5×5 patches searched within ±6 pixels). h: filter strength;
    sigma: the noise's standard deviation, if known (subtracted from the patch distances).
    jobs: worker processes."""
    check_images(noisy, "nlm_denoise", uint8=False, channels=None, allow_empty=True)
    with Runner(jobs) as runner:
        return _per_image(noisy, functools.partial(
            _nlm_image, h=h, sigma=0.0 if sigma is None else sigma), runner)


def tv_denoise(noisy: Tensor, weight: float, *, jobs: int = 1) -> Tensor:
    """noisy: (N, C, H, W) float in [0, 1] → denoised, same shape: scikit-image's Chambolle
    total-variation denoising per image; a larger weight smooths more. jobs: worker
    processes."""
    check_images(noisy, "tv_denoise", uint8=False, channels=None, allow_empty=True)
    with Runner(jobs) as runner:
        return _per_image(noisy, functools.partial(_tv_image, weight=weight), runner)


def bm3d_denoise(noisy: Tensor, sigma: float, *, jobs: int = 1) -> Tensor:
    """noisy: (N, C, H, W) float in [0, 1] → denoised, same shape: BM3D per image (the `bm3d`
    package, Mäkinen, Azzari and Foi's reference implementation): colour images (C = 3) with
    CBM3D (`bm3d_rgb`, in the opponent colour space), others channel by channel. sigma: the
    noise's standard deviation on the [0, 1] scale. About a second per 32×32 image per core;
    jobs: worker processes."""
    check_images(noisy, "bm3d_denoise", uint8=False, channels=None, allow_empty=True)
    if not sigma > 0:
        raise ValueError(f"bm3d_denoise: sigma must be positive, got {sigma}")
    with Runner(jobs) as runner:
        return _per_image(noisy, functools.partial(_bm3d_image, sigma=float(sigma)), runner)


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


def evaluate_baselines(noisy: Tensor, clean: Tensor, tune_on: int = 200,
                       methods: Iterable[str] = DEFAULT_METHODS, *, jobs: int = 1,
                       progress: bool = False,
                       unclip_sigma: float | None = None) -> dict[str, dict]:
    """noisy, clean: (N, 3, H, W), uint8 in 0..255 or float in [0, 1] → PSNRs (dB) on all N
    images of the noisy input and of each method with its parameter tuned on the first
    `tune_on` images: {"noisy input": {"psnr"}, "non-local means": {"psnr", "h", "sigma"},
    "total variation": {"psnr", "weight"}, "BM3D": {"psnr", "sigma"}}, each entry also with
    "images" (N) and "seconds" (its time, tuning included), each method's with "tuned_on" (how
    many images its parameter was tuned or measured on).

    methods: any of "nlm", "tv", "bm3d" (METHODS), in the order the results should come;
    BM3D is not among the default ones: it takes about a second per 32×32 image per core.
    sigma, NLM's and BM3D's noise level, is measured on the tuning images (the standard
    deviation of noisy − clean); NLM's h is searched as multiples of it, TV's weight on a grid;
    BM3D takes sigma as it is. jobs: worker processes (the results do not depend on it);
    progress: a bar over the images denoised. unclip_sigma (0..1 scale): also score each method's
    images after `scratchnet.unclip.unclip` with that noise level, as "psnr_unclipped"."""
    check_image_pair(noisy, clean, "evaluate_baselines", names=("noisy", "clean"),
                     channels=None)
    methods = list(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"evaluate_baselines: unknown method(s) {', '.join(map(repr, unknown))};"
                         f" choose among {', '.join(METHODS)}")
    noisy, clean = _unit(noisy), _unit(clean)
    if not 1 <= tune_on:
        raise ValueError(f"evaluate_baselines: tune_on must be at least 1, got {tune_on}")
    n = len(noisy)
    tune_noisy, tune_clean = noisy[:tune_on], clean[:tune_on]
    t = len(tune_noisy)
    residual = (tune_noisy - tune_clean).to(torch.float64)
    sigma = float(residual.std()) if residual.numel() > 1 else 0.0
    if "bm3d" in methods and not sigma > 0:
        raise ValueError("evaluate_baselines: BM3D needs the noise level, measured on the "
                         "tuning images, to be positive, but they equal the clean ones")
    work = {"nlm": len(NLM_H_OVER_SIGMA) * t + n, "tv": len(TV_WEIGHTS) * t + n, "bm3d": n}
    results: dict[str, dict] = {
        "noisy input": {"psnr": float(psnr(noisy, clean)), "images": n, "seconds": 0.0}}
    with _bar(sum(work[m] for m in methods), progress) as bar, Runner(jobs, bar) as runner:
        def nlm(x: Tensor, h: float) -> Tensor:
            return _per_image(x, functools.partial(_nlm_image, h=h, sigma=sigma), runner)

        def tv(x: Tensor, weight: float) -> Tensor:
            return _per_image(x, functools.partial(_tv_image, weight=weight), runner)

        for method in methods:
            bar.set_description(METHODS[method])
            start = time.perf_counter()
            if method == "nlm":
                h, _ = tune(nlm, tune_noisy, tune_clean, [r * sigma for r in NLM_H_OVER_SIGMA])
                denoised, notes = nlm(noisy, h), {"h": h, "sigma": sigma}
            elif method == "tv":
                weight, _ = tune(tv, tune_noisy, tune_clean, TV_WEIGHTS)
                denoised, notes = tv(noisy, weight), {"weight": weight}
            else:
                denoised = _per_image(noisy, functools.partial(_bm3d_image, sigma=sigma), runner)
                notes = {"sigma": sigma}
            entry = {"psnr": float(psnr(denoised, clean)), **notes}
            if unclip_sigma is not None:
                entry["psnr_unclipped"] = float(psnr(unclip(denoised.clamp(0, 1), unclip_sigma),
                                                     clean))
            entry.update(images=n, tuned_on=t, seconds=time.perf_counter() - start)
            results[METHODS[method]] = entry
    return results


def _bar(total: int, enabled: bool):
    from .progress import progress_bar

    return progress_bar(total, "baselines", enabled, unit="image")
