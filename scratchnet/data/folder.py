"""`dataset_from_folder`: the same data set as `build_default_dataset`, from a user's images."""
from __future__ import annotations

import os
import warnings
from functools import partial
from pathlib import Path

import torch

from .images import image_size, read_image
from .seeding import derive_generator
from .synthesis import CROP_SIZE, Pairs, synthesize_pairs

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                  ".pgm", ".pnm")
MAX_SIDE = 1024


SizedFile = tuple[Path, tuple[int, int]]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _capped_size(path: Path, max_side: int) -> tuple[int, int] | None:
    """(H, W) of the image as read_image(path, max_side) returns it; None if unreadable (the
    file is decoded, so a truncated one is found here rather than halfway through)."""
    try:
        h, w = image_size(path, decode=True)
    except ValueError:
        return None
    scale = min(1.0, max_side / max(h, w))
    return round(h * scale), round(w * scale)


def _split(folder: Path, seed: int, val_fraction: float,
           max_side: int) -> tuple[list[SizedFile], list[SizedFile]]:
    if not folder.is_dir():
        raise FileNotFoundError(f"dataset_from_folder: no such folder: {folder}")
    candidates = sorted((p for p in folder.rglob("*")
                         if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                        key=lambda p: p.relative_to(folder).as_posix())
    sized = [(p, _capped_size(p, max_side)) for p in candidates]
    files = [(p, hw) for p, hw in sized if hw is not None and min(hw) >= CROP_SIZE]
    unreadable = sum(hw is None for _, hw in sized)
    small = len(sized) - unreadable - len(files)
    if unreadable or small:
        warnings.warn(f"{folder}: skipped {_count(unreadable, 'unreadable image file')} and "
                      f"{_count(small, 'image')} smaller than {CROP_SIZE}×{CROP_SIZE}; using "
                      f"{len(files)} of {len(candidates)}", UserWarning, stacklevel=3)
    if len(files) < 2:
        raise ValueError(
            f"dataset_from_folder: {folder} holds {len(files)} readable image(s) of at least "
            f"{CROP_SIZE}×{CROP_SIZE} pixels ({len(candidates)} file(s) named like images: "
            f"{', '.join(IMAGE_SUFFIXES)}); at least 2 are needed, one for training and one "
            f"held out for validation")
    n_val = min(len(files) - 1, max(1, round(val_fraction * len(files))))
    held_out = set(torch.randperm(len(files), generator=derive_generator(seed, 2))[:n_val].tolist())
    train = [f for i, f in enumerate(files) if i not in held_out]
    val = [f for i, f in enumerate(files) if i in held_out]
    return train, val


def folder_split(folder: str | os.PathLike, seed: int = 0, val_fraction: float = 0.2,
                 max_side: int = MAX_SIDE) -> tuple[list[Path], list[Path]]:
    """→ (train_files, val_files) as `dataset_from_folder` uses them: the readable images under
    `folder` (searched recursively, headers only) that are at least 32×32 once downscaled to
    `max_side`, a seeded random `val_fraction` of them (at least one) held out."""
    train, val = _split(Path(folder), seed, val_fraction, max_side)
    return [p for p, _ in train], [p for p, _ in val]


def dataset_from_folder(folder: str | os.PathLike, n_train: int = 50_000, n_val: int = 1_000,
                        seed: int = 0, noise: str = "gaussian", *, val_fraction: float = 0.2,
                        max_side: int = MAX_SIDE, colour_augment: bool = True,
                        **noise_kw: float) -> Pairs:
    """→ ((noisy_1, noisy_2), (noisy_val, clean_val)), uint8 (n, 3, 32, 32) each, from the
    png/jpg/... images under `folder`, like `build_default_dataset`. Validation crops come only
    from the files `folder_split` holds out; images larger than `max_side` are downscaled to it
    first, and are read one at a time. colour_augment: random colours for the training crops
    (see `random_colours`)."""
    train, val = _split(Path(folder), seed, val_fraction, max_side)
    return synthesize_pairs([(partial(read_image, p, max_side), hw) for p, hw in train],
                            [(partial(read_image, p, max_side), hw) for p, hw in val],
                            n_train, n_val, seed, noise, noise_kw, where="dataset_from_folder",
                            colour_augment=colour_augment)
