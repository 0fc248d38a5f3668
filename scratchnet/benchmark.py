"""`python -m scratchnet benchmark`: the course network's train step, scratchnet against torch.nn.

Both frameworks run the same network (`models.course_denoiser`) with the same weights in the same
process. A train step is zero_grad, forward, MSE loss, backward and an Adam step; the two
frameworks' steps alternate (which one goes first alternates too), after a warm-up, and the table
gives medians. Per-layer times come from separate, instrumented steps (also interleaved):
scratchnet by timing each module's `forward` and `backward`; torch by timing each module's forward
and, during `loss.backward()`, by the moments autograd reaches the gradient of each layer's output
(a tensor hook on it): layer i's backward is the time between the hooks of its output and of its
input. Peak memory is measured in a fresh subprocess per framework (see `MEMORY_METHOD`).
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor

from .containers import Sequential
from .grad_mode import no_grad
from .interop import to_torch
from .loss import MSELoss
from .models import course_denoiser
from .module import Module
from .optim import Adam

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters

MEMORY_METHOD = {
    "cpu": "fresh subprocess per framework; glibc MALLOC_MMAP_THRESHOLD_=64 KiB so tensors are "
           "mapped on allocation and unmapped on free; after one warm-up run the kernel's peak-RSS "
           "counter is reset (/proc/self/clear_refs) and peak = VmHWM after the run − VmRSS before "
           "it, i.e. memory on top of weights, optimizer state and inputs",
    "cuda": "fresh subprocess per framework; after one warm-up run, torch.cuda.max_memory_allocated "
            "− memory_allocated before the run (torch's caching allocator's view)",
}


@dataclass
class Config:
    """What to measure; `quick` shrinks everything to a smoke run of a few seconds."""

    device: str = "cpu"
    batch_sizes: list[int] = field(default_factory=lambda: [4, 16, 64])
    image_size: int = 32
    channels: int = 48
    repeats: int = 100
    warmup: int = 10
    profile_batch: int = 16
    predict_size: int = 512
    threads: int = 0
    memory: bool = True


@dataclass
class StepResult:
    batch: int
    scratchnet_ms: float
    torch_ms: float
    scratchnet_peak_mib: float | None = None
    torch_peak_mib: float | None = None

    @property
    def ratio(self) -> float:
        return self.scratchnet_ms / self.torch_ms


@dataclass
class Report:
    config: Config
    torch_version: str
    threads: int
    device_name: str
    pinned_malloc: bool
    max_output_diff: float
    steps: list[StepResult]
    layers: list[tuple[str, float, float, float, float]]  # name, sn fwd, torch fwd, sn bwd, torch bwd
    predict_peak_mib: dict[str, float | None]


class Clock:
    """perf_counter in seconds, after waiting for queued GPU work."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def __call__(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()


class ScratchnetTrainer:
    """scratchnet: explicit forward, `crit.backward()`, `model.backward(...)`, `Adam.step()`."""

    def __init__(self, model: Sequential) -> None:
        self.model = model
        self.criterion = MSELoss()
        self.optimizer = Adam(model.parameters(), lr=1e-3)

    def step(self, x: Tensor, target: Tensor) -> None:
        self.optimizer.zero_grad()
        self.criterion(self.model(x), target)
        self.model.backward(self.criterion.backward())
        self.optimizer.step()

    def profiled_step(self, x: Tensor, target: Tensor, clock: Clock) -> list[tuple[float, float]]:
        """(forward s, backward s) per module, then the loss, then (0, zero_grad + Adam step)."""
        layers = list(self.model)
        fwd, bwd = [0.0] * (len(layers) + 1), [0.0] * (len(layers) + 1)
        t0 = clock()
        self.optimizer.zero_grad()
        t_zero = clock() - t0
        h = x
        for i, layer in enumerate(layers):
            t0 = clock()
            h = layer(h)
            fwd[i] = clock() - t0
        t0 = clock()
        self.criterion(h, target)
        fwd[-1] = clock() - t0
        t0 = clock()
        g = self.criterion.backward()
        bwd[-1] = clock() - t0
        for i in reversed(range(len(layers))):
            t0 = clock()
            g = layers[i].backward(g)
            bwd[i] = clock() - t0
        t0 = clock()
        self.optimizer.step()
        return list(zip(fwd, bwd)) + [(0.0, t_zero + clock() - t0)]

    def predict(self, x: Tensor) -> Tensor:
        with no_grad():
            return self.model(x)


class TorchTrainer:
    """torch.nn + autograd, as a torch user writes it: `loss.backward()`, `torch.optim.Adam`."""

    def __init__(self, model: torch.nn.Sequential) -> None:
        self.model = model
        self.optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(self, x: Tensor, target: Tensor) -> None:
        with torch.enable_grad():
            self.optimizer.zero_grad()
            F.mse_loss(self.model(x), target).backward()
            self.optimizer.step()

    def profiled_step(self, x: Tensor, target: Tensor, clock: Clock) -> list[tuple[float, float]]:
        """Like ScratchnetTrainer.profiled_step; backward per layer from hooks (module docstring)."""
        layers = list(self.model)
        fwd = [0.0] * (len(layers) + 1)
        reached: list[float] = [0.0] * len(layers)

        def hook(i: int) -> Callable[[Tensor], None]:
            def record(_: Tensor) -> None:
                reached[i] = clock()
            return record

        with torch.enable_grad():
            t0 = clock()
            self.optimizer.zero_grad()
            t_zero = clock() - t0
            h = x
            for i, layer in enumerate(layers):
                t0 = clock()
                h = layer(h)
                fwd[i] = clock() - t0
                h.register_hook(hook(i))
            t0 = clock()
            loss = F.mse_loss(h, target)
            fwd[-1] = clock() - t0
            t_start = clock()
            loss.backward()
            t_end = clock()
        t0 = clock()
        self.optimizer.step()
        t_step = clock() - t0
        ends = [t_end] + reached[:-1]          # layer i's backward ends when its input's grad is ready
        bwd = [end - start for end, start in zip(ends, reached)] + [reached[-1] - t_start]
        return list(zip(fwd, bwd)) + [(0.0, t_zero + t_step)]

    def predict(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            return self.model(x)


Trainers = tuple[ScratchnetTrainer, TorchTrainer]


def build_pair(config: Config) -> Trainers:
    """The course network in scratchnet and its torch.nn twin, with identical weights."""
    torch.manual_seed(0)
    model = course_denoiser(config.channels).to(config.device)
    return ScratchnetTrainer(model), TorchTrainer(to_torch(model))


def images(batch: int, size: int, device: str) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(batch)
    x, t = torch.rand(2, batch, 3, size, size, generator=generator)
    return x.to(device), t.to(device)


def time_steps(trainers: Trainers, x: Tensor, target: Tensor, config: Config, clock: Clock) -> list[float]:
    """Median seconds per train step of each trainer, steps interleaved, order alternating."""
    times: list[list[float]] = [[] for _ in trainers]
    for _ in range(config.warmup):
        for trainer in trainers:
            trainer.step(x, target)
    for r in range(config.repeats):
        order = range(len(trainers)) if r % 2 == 0 else reversed(range(len(trainers)))
        for k in order:
            t0 = clock()
            trainers[k].step(x, target)
            times[k].append(clock() - t0)
    return [statistics.median(t) for t in times]


def profile_layers(trainers: Trainers, x: Tensor, target: Tensor, config: Config, clock: Clock,
                   ) -> list[list[tuple[float, float]]]:
    """Per trainer, per row: median (forward s, backward s) of instrumented, interleaved steps."""
    samples: list[list[list[tuple[float, float]]]] = [[] for _ in trainers]
    for r in range(config.warmup + config.repeats):
        order = range(len(trainers)) if r % 2 == 0 else reversed(range(len(trainers)))
        for k in order:
            rows = trainers[k].profiled_step(x, target, clock)
            if r >= config.warmup:
                samples[k].append(rows)
    return [[(statistics.median(s[i][0] for s in per), statistics.median(s[i][1] for s in per))
             for i in range(len(per[0]))] for per in samples]


def layer_label(index: int, layer: Module) -> str:
    """'4 Upsampling(48→48, 3×3)' for layers with channels, '1 ReLU' otherwise."""
    name = f"{index} {type(layer).__name__}"
    if hasattr(layer, "in_channels"):
        kh, kw = layer.kernel_size
        name += f"({layer.in_channels}→{layer.out_channels}, {kh}×{kw}"
        name += f", stride {layer.stride[0]})" if layer.stride != (1, 1) else ")"
    return name


def output_shapes(model: Sequential, x: Tensor) -> list[tuple[int, ...]]:
    shapes = []
    with no_grad():
        for layer in model:
            x = layer(x)
            shapes.append(tuple(x.shape))
    return shapes


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


def memory_worker(spec: dict) -> dict:
    """Runs in a fresh process: peak memory of one framework's train steps and predict."""
    config = Config(**spec["config"])
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.set_grad_enabled(False)
    device = torch.device(config.device)
    torch.manual_seed(0)
    model = course_denoiser(config.channels).to(device)
    trainer = ScratchnetTrainer(model) if spec["framework"] == "scratchnet" \
        else TorchTrainer(to_torch(model))
    train = {batch: peak_memory(partial(trainer.step, *images(batch, config.image_size,
                                                             config.device)), device)
             for batch in config.batch_sizes}
    x = torch.rand(1, 3, config.predict_size, config.predict_size, device=device)
    return {"train": train, "predict": peak_memory(partial(trainer.predict, x), device)}


def measure_memory(config: Config) -> dict[str, dict]:
    """`memory_worker` for each framework, each in a fresh Python process (the two run side by
    side; each measures only itself) with glibc's mmap threshold pinned to 64 KiB."""
    code = ("import json, sys; from scratchnet.benchmark import memory_worker; "
            "print(json.dumps(memory_worker(json.loads(sys.argv[1]))))")
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    workers = {framework: subprocess.Popen(
        [sys.executable, "-c", code, json.dumps({"framework": framework, "config": asdict(config)})],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for framework in ("scratchnet", "torch")}
    results = {}
    for framework, worker in workers.items():
        out, err = worker.communicate()
        if worker.returncode:
            raise RuntimeError(f"benchmark: the {framework} memory worker failed:\n{err}")
        result = json.loads(out.strip().splitlines()[-1])
        results[framework] = {"predict": result["predict"],
                              "train": {int(k): v for k, v in result["train"].items()}}
    return results


def device_name(device: torch.device) -> str:
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


def run_benchmark(config: Config) -> Report:
    """Time both frameworks (interleaved) and measure their peak memory."""
    pinned = pin_malloc()
    if config.threads:
        torch.set_num_threads(config.threads)
    device = torch.device(config.device)
    clock = Clock(device)
    trainers = build_pair(config)
    x, target = images(config.profile_batch, config.image_size, config.device)
    with torch.no_grad():
        diff = (trainers[0].predict(x) - trainers[1].predict(x)).abs().max().item()
    shapes = output_shapes(trainers[0].model, x)
    rows = profile_layers(trainers, x, target, config, clock)
    names = [f"{layer_label(i, layer)}  → {tuple(s)}"
             for i, (layer, s) in enumerate(zip(trainers[0].model, shapes))]
    names += ["MSELoss", "zero_grad + Adam.step"]
    layers = [(name, sn[0], tc[0], sn[1], tc[1]) for name, sn, tc in zip(names, *rows)]
    steps = []
    for batch in config.batch_sizes:
        trainers = build_pair(config)
        x, target = images(batch, config.image_size, config.device)
        sn_s, torch_s = time_steps(trainers, x, target, config, clock)
        steps.append(StepResult(batch, sn_s * 1e3, torch_s * 1e3))
    predict: dict[str, float | None] = {"scratchnet": None, "torch": None}
    if config.memory:
        for framework, result in measure_memory(config).items():
            predict[framework] = result["predict"]
            for step in steps:
                setattr(step, f"{framework}_peak_mib", result["train"][step.batch])
    return Report(config, torch.__version__, torch.get_num_threads(), device_name(device), pinned,
                  diff, steps, layers, predict)


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table, columns padded to their widest cell, numbers right-aligned."""
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [c.ljust(w) if i == 0 else c.rjust(w)
                  for i, (c, w) in enumerate(zip(cells, widths))]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths)) + "|"
    return [line(header), rule] + [line(r) for r in rows]


def mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}" if seconds else "-"


def format_report(report: Report) -> str:
    c = report.config
    out = [
        (f"scratchnet vs torch.nn + autograd: course network (channels={c.channels}), "
         f"{c.image_size}×{c.image_size} RGB images, MSE loss, Adam(lr=1e-3)"),
        (f"device: {c.device} ({report.device_name}) · torch {report.torch_version} · "
         f"threads: {report.threads} · float32"),
        f"same weights: max |scratchnet − torch| on one batch's output = {report.max_output_diff:.1e}",
        (f"timing: {c.repeats} interleaved repetitions after {c.warmup} warm-up steps; medians; "
         + ("glibc malloc thresholds pinned (see pin_malloc)" if report.pinned_malloc
            else "system malloc")),
        "",
        "Train step (zero_grad + forward + MSE + backward + Adam step)",
    ]
    out += table(
        ["batch", "scratchnet ms", "torch ms", "ratio sn/torch", "scratchnet img/s", "torch img/s",
         "scratchnet peak MiB", "torch peak MiB"],
        [[str(s.batch), f"{s.scratchnet_ms:.2f}", f"{s.torch_ms:.2f}", f"{s.ratio:.2f}",
          f"{s.batch / s.scratchnet_ms * 1e3:.0f}", f"{s.batch / s.torch_ms * 1e3:.0f}",
          mib(s.scratchnet_peak_mib), mib(s.torch_peak_mib)] for s in report.steps])
    out += ["", (f"Per layer, batch {c.profile_batch} (ms; medians of instrumented, interleaved "
                 "steps; torch backward from tensor hooks)")]
    rows = [[name, ms(sf), ms(tf), ms(sb), ms(tb)] for name, sf, tf, sb, tb in report.layers]
    totals = [sum(row[k] for row in report.layers) for k in range(1, 5)]
    rows.append(["sum"] + [ms(v) for v in totals])
    out += table(["layer", "scratchnet fwd", "torch fwd", "scratchnet bwd", "torch bwd"], rows)
    if c.memory:
        sn, tc = report.predict_peak_mib["scratchnet"], report.predict_peak_mib["torch"]
        ratio = f"{sn / tc:.2f}" if sn is not None and tc else "n/a"
        out += ["", (f"Inference peak memory: predict on (1, 3, {c.predict_size}, "
                     f"{c.predict_size}) inside scratchnet.no_grad() / torch.no_grad()")]
        out += table(["scratchnet MiB", "torch MiB", "ratio sn/torch"], [[mib(sn), mib(tc), ratio]])
        out += [f"peak memory method: {MEMORY_METHOD[torch.device(c.device).type]}"]
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> Config:
    p = argparse.ArgumentParser(
        prog="scratchnet benchmark",
        description="Train-step time and peak memory of the course network: scratchnet against "
                    "torch.nn + autograd, same weights, interleaved.")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 16, 64])
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--channels", type=int, default=48)
    p.add_argument("--repeats", type=int, default=100, help="timed steps per framework")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--profile-batch", type=int, default=16, help="batch of the per-layer table")
    p.add_argument("--predict-size", type=int, default=512, help="side of the predict image")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: batch 4, 5 repetitions, predict on 64×64")
    a = p.parse_args(argv)
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda: torch.cuda.is_available() is False")
    config = Config(a.device, a.batch_sizes, a.image_size, a.channels, a.repeats, a.warmup,
                    a.profile_batch, a.predict_size, a.threads, not a.no_memory)
    if a.quick:
        config.batch_sizes, config.repeats, config.warmup = [4], 5, 2
        config.profile_batch, config.predict_size = 4, 64
    return config


def main(argv: list[str] | None = None) -> None:
    torch.set_grad_enabled(False)
    print(format_report(run_benchmark(parse_args(argv))))


if __name__ == "__main__":
    main()
