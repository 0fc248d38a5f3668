"""Peak memory of train steps and of inference, measured in a fresh process per framework."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from typing import TypedDict

import torch

from ..interop import to_torch
from .config import Config
from .trainers import ScratchnetTrainer, TorchTrainer, build_model_for, images

FRAMEWORKS = ("scratchnet", "torch")
MEMORY_METHOD = {
    "cpu": "fresh subprocess per framework; glibc MALLOC_MMAP_THRESHOLD_=64 KiB so tensors are "
           "mapped on allocation and unmapped on free; after one warm-up run the kernel's peak-RSS "
           "counter is reset (/proc/self/clear_refs) and peak = VmHWM after the run − VmRSS before "
           "it, i.e. memory on top of weights, optimizer state and inputs",
    "cuda": "fresh subprocess per framework; after one warm-up run, torch.cuda.max_memory_allocated "
            "− memory_allocated before the run (torch's caching allocator's view)",
}



class ModelMemory(TypedDict):
    """Peak MiB (None where it cannot be measured) of a train step per batch size, and of predict."""

    train: dict[int, float | None]
    predict: float | None


def read_proc_status() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in bytes (Linux)."""
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
    return values


def peak_memory(run: Callable[[], object], device: torch.device) -> float | None:
    """MiB allocated on top of what is live before `run()`, at its peak (MEMORY_METHOD)."""
    run()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        run()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    if not os.access("/proc/self/clear_refs", os.W_OK):
        return None
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = read_proc_status()["VmRSS"]
    run()
    return (read_proc_status()["VmHWM"] - before) / 2**20


def worker(framework: str, config: Config) -> dict[str, ModelMemory]:
    """Per model of `config`: peak memory of one framework's train steps and predict. Meant to
    run in a fresh process (`measure_memory`)."""
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.set_grad_enabled(False)
    device = torch.device(config.device)
    results = {}
    for name in config.model_names:
        model = build_model_for(name, config)
        trainer = ScratchnetTrainer(model) if framework == "scratchnet" \
            else TorchTrainer(to_torch(model))
        train = {batch: peak_memory(partial(trainer.step, *images(batch, config.image_size,
                                                                 config.device)), device)
                 for batch in config.batch_sizes}
        x = torch.rand(1, 3, config.predict_size, config.predict_size, device=device)
        results[name] = {"train": train, "predict": peak_memory(partial(trainer.predict, x),
                                                                device)}
    return results


def measure_memory(config: Config) -> dict[str, dict[str, ModelMemory]]:
    """{framework: {model: memory}}: `worker` for each framework, each in a fresh Python process
    (the two run side by side; each measures only itself) with glibc's mmap threshold pinned to
    64 KiB."""
    code = ("import json, sys; from scratchnet.benchmark.config import Config; "
            "from scratchnet.benchmark.memory import worker; "
            "print(json.dumps(worker(sys.argv[1], Config(**json.loads(sys.argv[2])))))")
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    workers = {framework: subprocess.Popen(
        [sys.executable, "-c", code, framework, json.dumps(asdict(config))],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for framework in FRAMEWORKS}
    results = {}
    for framework, process in workers.items():
        out, err = process.communicate()
        if process.returncode:
            raise RuntimeError(f"benchmark: the {framework} memory worker failed:\n{err}")
        measured = json.loads(out.strip().splitlines()[-1])
        results[framework] = {
            name: {"predict": m["predict"], "train": {int(k): v for k, v in m["train"].items()}}
            for name, m in measured.items()}
    return results
