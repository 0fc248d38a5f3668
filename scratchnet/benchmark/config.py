"""What the benchmark measures: `Config`, its defaults, and the `--quick` smoke-run settings."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..models import MODELS

QUICK = {"batch_sizes": [4], "repeats": 5, "warmup": 2, "profile_batch": 4, "predict_size": 64}


@dataclass
class Config:
    """What to measure. `model`: a name in `models.MODELS`, or "all"; `channels`: the models'
    width, None for each model's own default; `threads`: 0 for torch's default."""

    model: str = "all"
    device: str = "cpu"
    batch_sizes: list[int] = field(default_factory=lambda: [4, 16, 64])
    image_size: int = 32
    channels: int | None = None
    repeats: int = 100
    warmup: int = 10
    profile_batch: int = 16
    predict_size: int = 512
    threads: int = 0
    memory: bool = True

    @property
    def model_names(self) -> list[str]:
        return list(MODELS) if self.model == "all" else [self.model]

    def model_kwargs(self) -> dict[str, int]:
        """Keyword arguments of `models.build_model`."""
        return {} if self.channels is None else {"channels": self.channels}

    def quick(self) -> Config:
        """This configuration shrunk to a smoke run of a few seconds per model (`QUICK`)."""
        return replace(self, **QUICK)
