"""Reading image files as uint8 RGB tensors (3, H, W), and antialiased downscaling."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

_SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def downscale(image: Tensor, factor: float, min_side: int = 1) -> Tensor:
    """image: uint8 (3, H, W) → uint8 (3, ≈H/factor, ≈W/factor), bilinear with antialiasing.

    The factor is clamped so that the shorter side stays at least `min_side` (an image already
    smaller is returned as is); factors below 1 do not upscale.
    """
    h, w = image.shape[-2:]
    factor = max(1.0, min(factor, min(h, w) / min_side))
    size = (round(h / factor), round(w / factor))
    if size == (h, w):
        return image
    return F.interpolate(image[None], size=size, mode="bilinear", antialias=True,
                         align_corners=False)[0]


def is_supported(mode: str) -> bool:
    """Whether read_image can turn a PIL image mode into RGB (floating-point "F" it cannot)."""
    return mode != "F"


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(H, W) of an image file, from its header; raises ValueError if PIL cannot read the file
    as an image or read_image cannot convert its mode."""
    from PIL import Image

    try:
        with Image.open(Path(path)) as img:
            if not is_supported(img.mode):
                raise ValueError(f"unsupported image mode {img.mode!r}")
            return img.height, img.width
    except Exception as e:
        raise ValueError(f"image_size: {path} is not a readable image: {e}") from None


def read_image(path: str | os.PathLike, max_side: int | None = None) -> Tensor:
    """Image file → uint8 (3, H, W). Grey images are replicated to 3 channels, alpha is dropped,
    16-bit images are scaled to 8 bits, animations give their first frame; with `max_side`, an
    image whose longer side exceeds it is downscaled to fit."""
    from PIL import Image

    with Image.open(Path(path)) as img:
        if max_side is not None:
            img.draft("RGB", (max_side, max_side))
        if not is_supported(img.mode):
            raise ValueError(f"read_image: {path}: unsupported image mode {img.mode!r}")
        if img.mode in _SIXTEEN_BIT_MODES:
            grey = np.asarray(img, dtype=np.float64) / 257
            array = np.repeat(np.clip(grey.round(), 0, 255).astype(np.uint8)[..., None], 3, axis=2)
        else:
            rgba = img.convert("RGBA") if img.mode == "P" else img
            array = np.asarray(rgba.convert("RGB"), dtype=np.uint8)
    image = torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()
    if max_side is not None and max(image.shape[1:]) > max_side:
        image = downscale(image, max(image.shape[1:]) / max_side)
    return image
