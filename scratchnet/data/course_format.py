"""The course's data files: `torch.save`'d pairs (a, b) of uint8 image tensors (N, 3, H, W).

train_data.pkl holds (noisy_1, noisy_2), two noisy draws of the same images; val_data.pkl holds
(noisy, clean).
"""
from __future__ import annotations

import os

from torch import Tensor

from ..files import atomic_save, load_tensors
from ..validation import check_image_pair, shape_str


def _describe(obj: object) -> str:
    if isinstance(obj, (tuple, list)):
        kinds = ", ".join(type(o).__name__ for o in obj[:4]) + (", ..." if len(obj) > 4 else "")
        return f"a {type(obj).__name__} of {len(obj)} items ({kinds})"
    if isinstance(obj, Tensor):
        return f"a single tensor of shape {shape_str(obj.shape)}"
    if isinstance(obj, dict):
        return f"a dict with keys {list(obj)[:4]}"
    return f"a {type(obj).__name__}"


def load_pairs(path: str | os.PathLike) -> tuple[Tensor, Tensor]:
    """Load a course data file → (a, b), uint8 (N, 3, H, W) each, on the CPU.

    Only tensors are unpickled (`weights_only=True`): a file that holds anything else is refused
    before any of its code can run.
    """
    obj = load_tensors(path, "a course data file (a pair of uint8 image tensors)")
    where = f"load_pairs: {path}"
    if not isinstance(obj, (tuple, list)) or len(obj) != 2 \
            or not all(isinstance(t, Tensor) for t in obj):
        raise ValueError(f"{where}: expected a pair (a, b) of tensors, got {_describe(obj)}")
    return check_image_pair(*obj, where, floating=False, allow_empty=True)


def _compact(t: Tensor) -> Tensor:
    """t itself, or a copy when t is a view whose storage is larger (torch.save writes it all)."""
    t = t.detach().cpu().contiguous()
    return t if t.untyped_storage().nbytes() == t.nbytes else t.clone()


def save_pairs(path: str | os.PathLike, a: Tensor, b: Tensor) -> None:
    """Write (a, b), uint8 (N, 3, H, W) each, in the course format, atomically (`atomic_write`):
    a failed save leaves any existing file intact and no temporary file behind."""
    check_image_pair(a, b, f"save_pairs: {path}", floating=False, allow_empty=True)
    atomic_save((_compact(a), _compact(b)), path)
