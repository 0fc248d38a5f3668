"""A whole benchmark run: each model's train-step times, per-layer profile and peak memory."""
from __future__ import annotations

import platform

import torch

from .config import Config
from .layer_profile import layer_names, profile_layers
from .memory import FRAMEWORKS, ModelMemory, measure_memory
from .results import ModelReport, Report, StepResult
from .timing import Clock, pin_malloc, time_steps
from .trainers import build_pair, images


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model name."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def benchmark_model(name: str, config: Config, clock: Clock) -> ModelReport:
    """Time both frameworks on model `name` (interleaved): per layer, then per batch size."""
    trainers = build_pair(name, config)
    model = trainers[0].model
    x, target = images(config.profile_batch, config.image_size, config.device)
    diff = (trainers[0].predict(x) - trainers[1].predict(x)).abs().max().item()
    names = layer_names(model, x, trainers[1].model)
    rows = profile_layers(trainers, x, target, config, clock)
    layers = [(label, sn[0], tc[0], sn[1], tc[1]) for label, sn, tc in zip(names, *rows)]
    steps = []
    for batch in config.batch_sizes:
        trainers = build_pair(name, config)
        x, target = images(batch, config.image_size, config.device)
        sn_s, torch_s = time_steps(trainers, x, target, config, clock)
        steps.append(StepResult(batch, sn_s * 1e3, torch_s * 1e3))
    spec = ", ".join(f"{k}={v}" for k, v in model.spec["kwargs"].items())
    return ModelReport(name, spec, diff, steps, layers, {framework: None for framework in FRAMEWORKS})


def add_memory(report: ModelReport, memory: dict[str, ModelMemory]) -> None:
    """Fill in `report`'s peak memory from `measure_memory`'s results for its model."""
    for framework, measured in memory.items():
        report.predict_peak_mib[framework] = measured["predict"]
        for step in report.steps:
            setattr(step, f"{framework}_peak_mib", measured["train"][step.batch])


def run_benchmark(config: Config) -> Report:
    """Benchmark each model of `config`, then measure the peak memory of all of them."""
    pinned = pin_malloc()
    if config.threads:
        torch.set_num_threads(config.threads)
    device = torch.device(config.device)
    clock = Clock(device)
    models = [benchmark_model(name, config, clock) for name in config.model_names]
    if config.memory:
        memory = measure_memory(config)
        for report in models:
            add_memory(report, {framework: memory[framework][report.name]
                                for framework in FRAMEWORKS})
    return Report(config, torch.__version__, torch.get_num_threads(), device_name(device), pinned,
                  models)
