"""`default_data_dir` and `ensure_data`: where the course data files live, built when absent."""
from __future__ import annotations

import os
from pathlib import Path

from .course_format import save_pairs
from .default_dataset import build_default_dataset

TRAIN_FILE = "train_data.pkl"
VAL_FILE = "val_data.pkl"


def default_data_dir() -> Path:
    """$SCRATCHNET_DATA_DIR if set; else <repo>/data when scratchnet runs from a source checkout;
    else ./data."""
    if os.environ.get("SCRATCHNET_DATA_DIR"):
        return Path(os.environ["SCRATCHNET_DATA_DIR"]).expanduser()
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file():
        return root / "data"
    return Path.cwd() / "data"


def ensure_data(data_dir: str | os.PathLike | None = None, n_train: int = 50_000,
                n_val: int = 1_000, seed: int = 0, noise: str = "gaussian",
                **noise_kw: float) -> tuple[Path, Path]:
    """→ (data_dir/train_data.pkl, data_dir/val_data.pkl). A file that is absent is built with
    `build_default_dataset` and saved; an existing file (e.g. the course's) is never touched."""
    data_dir = default_data_dir() if data_dir is None else Path(data_dir)
    train, val = data_dir / TRAIN_FILE, data_dir / VAL_FILE
    build_missing(train, val, n_train, n_val, seed, noise, **noise_kw)
    return train, val


def build_missing(train: Path | None, val: Path | None, n_train: int = 50_000,
                  n_val: int = 1_000, seed: int = 0, noise: str = "gaussian",
                  **noise_kw: float) -> None:
    """Build the default set into whichever of `train`, `val` is given and does not exist yet."""
    need_train = train is not None and not train.exists()
    need_val = val is not None and not val.exists()
    if need_train or need_val:
        (noisy_1, noisy_2), (noisy_val, clean_val) = build_default_dataset(
            n_train if need_train else 0, n_val if need_val else 0, seed, noise, **noise_kw)
        if need_train:
            save_pairs(train, noisy_1, noisy_2)
        if need_val:
            save_pairs(val, noisy_val, clean_val)
