"""The course's data files: `torch.save`'d pairs (a, b) of uint8 image tensors (N, 3, H, W).

train_data.pkl holds (noisy_1, noisy_2), two noisy draws of the same images; val_data.pkl holds
(noisy, clean).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from torch import Tensor

from ..validation import shape_str


def check_pair(a: object, b: object, where: str) -> None:
    """Raise ValueError unless a, b are uint8 tensors of one shape (N, 3, H, W)."""
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, Tensor):
            raise ValueError(f"{where}: expected a pair (a, b) of tensors, but {name} is a "
                             f"{type(t).__name__}")
        if t.dtype != torch.uint8:
            raise ValueError(f"{where}: expected uint8 images (0..255), but {name} is {t.dtype}")
        if t.dim() != 4 or t.shape[1] != 3:
            raise ValueError(f"{where}: expected images of shape (N, 3, H, W), but {name} has "
                             f"shape {shape_str(t.shape)}")
    if a.shape != b.shape:
        raise ValueError(f"{where}: the two tensors differ in shape: {shape_str(a.shape)} and "
                         f"{shape_str(b.shape)}")


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
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_pairs: no such file: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ValueError(
            f"load_pairs: {path} is not a course data file: it is corrupt or truncated, or it "
            f"holds objects other than tensors (refused: unpickling them could run code). "
            f"torch.load said: {type(e).__name__}: {first_line}"
        ) from None
    where = f"load_pairs: {path}"
    if not isinstance(obj, (tuple, list)) or len(obj) != 2:
        raise ValueError(f"{where}: expected a pair (a, b) of tensors, got {_describe(obj)}")
    a, b = obj
    check_pair(a, b, where)
    return a, b


def _compact(t: Tensor) -> Tensor:
    """t itself, or a copy when t is a view whose storage is larger (torch.save writes it all)."""
    t = t.detach().cpu().contiguous()
    return t if t.untyped_storage().nbytes() == t.nbytes else t.clone()


def save_pairs(path: str | os.PathLike, a: Tensor, b: Tensor) -> None:
    """Write (a, b), uint8 (N, 3, H, W) each, in the course format, atomically: a temporary file
    in the same folder replaces `path` only once fully written, so a failed save leaves any
    existing file intact and no temporary file behind."""
    path = Path(path)
    check_pair(a, b, f"save_pairs: {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save((_compact(a), _compact(b)), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
