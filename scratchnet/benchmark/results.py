"""What a benchmark run found: per model, then for the whole run."""
from __future__ import annotations

from dataclasses import dataclass

from .config import Config


@dataclass
class StepResult:
    """Median train-step time of each framework at one batch size, and its peak memory."""

    batch: int
    scratchnet_ms: float
    torch_ms: float
    scratchnet_peak_mib: float | None = None
    torch_peak_mib: float | None = None

    @property
    def ratio(self) -> float:
        return self.scratchnet_ms / self.torch_ms


@dataclass
class ModelReport:
    """One model's results; `spec`: its constructor's arguments, e.g. "channels=48"."""

    name: str
    spec: str
    max_output_diff: float
    steps: list[StepResult]
    layers: list[tuple[str, float, float, float, float]]  # name, sn fwd, torch fwd, sn bwd, torch bwd
    predict_peak_mib: dict[str, float | None]


@dataclass
class Report:
    config: Config
    torch_version: str
    threads: int
    device_name: str
    pinned_malloc: bool
    models: list[ModelReport]
