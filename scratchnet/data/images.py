"""Reading image files as uint8 RGB tensors (3, H, W), and antialiased downscaling."""
from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

_SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")
_EXIF_ORIENTATION = 0x0112
_TRANSPOSING = (5, 6, 7, 8)


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


def image_size(path: str | os.PathLike, decode: bool = False) -> tuple[int, int]:
    """(H, W) of an image file as read_image returns it (EXIF orientation applied), from its
    header, or, when `decode`, after decoding it (draft mode: a JPEG at reduced scale), which
    finds truncated files; raises ValueError if PIL cannot read the file as an image or
    read_image cannot convert its mode."""
    with _opened(path, "image_size") as img:
        if not is_supported(img.mode):
            raise ValueError(f"image_size: {path}: unsupported image mode {img.mode!r}")
        w, h = img.size
        upright = (w, h) if img.getexif().get(_EXIF_ORIENTATION, 1) in _TRANSPOSING else (h, w)
        if decode:
            img.draft("RGB", (max(1, w // 8), max(1, h // 8)))
            _load(img, path, "image_size")
        return upright


@contextmanager
def _opened(path: str | os.PathLike, where: str) -> Iterator:
    """PIL's Image.open(path), with every way a file can fail to be an image turned into a
    ValueError (IsADirectoryError and FileNotFoundError pass through, with the path)."""
    from PIL import Image

    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"{path} is a folder, not an image file", str(path))
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, f"no such image file: {path}", str(path))
    try:
        img = Image.open(path)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError(f"{where}: {path} is not a readable image ({_reason(e)})") from None
    with img:
        yield img


def _load(img, path: str | os.PathLike, where: str) -> None:
    from PIL import Image

    try:
        img.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise ValueError(f"{where}: {path} is not a readable image ({_reason(e)})") from None


def _reason(e: Exception) -> str:
    text = str(e).split(" - ")[0].strip() or type(e).__name__
    if "cannot identify image file" in text:
        return "not an image format PIL knows"
    if "truncated" in text.lower() or "broken data stream" in text:
        return "the file is truncated or damaged"
    return text


def read_image(path: str | os.PathLike, max_side: int | None = None) -> Tensor:
    """Image file → uint8 (3, H, W), upright (EXIF orientation applied, as photo viewers do).
    Grey images are replicated to 3 channels, alpha is dropped, 16-bit images are scaled to 8
    bits, animations give their first frame; with `max_side`, an image whose longer side exceeds
    it is downscaled to fit. ValueError for a file that is not a readable image."""
    from PIL import ImageOps

    with _opened(path, "read_image") as img:
        if max_side is not None:
            img.draft("RGB", (max_side, max_side))
        if not is_supported(img.mode):
            raise ValueError(f"read_image: {path}: unsupported image mode {img.mode!r}")
        _load(img, path, "read_image")
        img = ImageOps.exif_transpose(img)
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
