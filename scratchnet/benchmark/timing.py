"""Timing a train step: the clock, interleaved repetitions with medians, and pinned malloc."""
from __future__ import annotations

import ctypes
import statistics
import time
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from .config import Config
from .trainers import Trainer

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


class Clock:
    """perf_counter in seconds, after waiting for queued GPU work."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def __call__(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()


def interleaved(count: int, rounds: int) -> Iterator[tuple[int, int]]:
    """(round, k) for k in range(count), each round, in forward order on even rounds and in
    reverse order on odd ones, so that no framework always runs first."""
    for r in range(rounds):
        for k in (range(count) if r % 2 == 0 else reversed(range(count))):
            yield r, k


def time_steps(trainers: Sequence[Trainer], x: Tensor, target: Tensor, config: Config,
               clock: Clock) -> list[float]:
    """Median seconds per train step of each trainer, after `config.warmup` steps of each."""
    times: list[list[float]] = [[] for _ in trainers]
    for _ in range(config.warmup):
        for trainer in trainers:
            trainer.step(x, target)
    for _, k in interleaved(len(trainers), config.repeats):
        t0 = clock()
        trainers[k].step(x, target)
        times[k].append(clock() - t0)
    return [statistics.median(t) for t in times]


def pin_malloc() -> bool:
    """Make glibc's malloc keep freed memory for reuse, with fixed thresholds (mmap above 32 MiB,
    never trim) instead of thresholds that adapt to what was freed before.

    Otherwise whether a tensor of a few MiB costs fresh page faults depends on the allocation
    history of the whole process, the other framework's included: torch's train step at batch 16
    varied between 9 and 16 ms from run to run here, and 6.6 ms with this. False if malloc is
    not glibc's (the times are then measured with the system's allocator as it is)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, 32 << 20) and libc.mallopt(M_TRIM_THRESHOLD, -1))
