"""The benchmark's report as text: a header, then each model's Markdown tables."""
from __future__ import annotations

import torch

from .memory import MEMORY_METHOD
from .results import ModelReport, Report


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


def format_model(model: ModelReport, report: Report) -> list[str]:
    """One model's section: its train-step, per-layer and (if measured) inference-memory tables."""
    c, name = report.config, model.name
    out = [
        f"Model: {name} ({model.spec})",
        f"same weights: max |scratchnet − torch| on one batch's output = {model.max_output_diff:.1e}",
        "",
        f"Train step, {name} (zero_grad + forward + MSE + backward + Adam step)",
    ]
    out += table(
        ["batch", "scratchnet ms", "torch ms", "ratio sn/torch", "scratchnet img/s", "torch img/s",
         "scratchnet peak MiB", "torch peak MiB"],
        [[str(s.batch), f"{s.scratchnet_ms:.2f}", f"{s.torch_ms:.2f}", f"{s.ratio:.2f}",
          f"{s.batch / s.scratchnet_ms * 1e3:.0f}", f"{s.batch / s.torch_ms * 1e3:.0f}",
          mib(s.scratchnet_peak_mib), mib(s.torch_peak_mib)] for s in model.steps])
    out += ["", (f"Per layer, {name}, batch {c.profile_batch} (ms; medians of instrumented, "
                 "interleaved steps; torch backward from autograd node hooks)")]
    rows = [[label, ms(sf), ms(tf), ms(sb), ms(tb)] for label, sf, tf, sb, tb in model.layers]
    totals = [sum(row[k] for row in model.layers) for k in range(1, 5)]
    rows.append(["sum"] + [ms(v) for v in totals])
    out += table(["layer", "scratchnet fwd", "torch fwd", "scratchnet bwd", "torch bwd"], rows)
    if c.memory:
        sn, tc = model.predict_peak_mib["scratchnet"], model.predict_peak_mib["torch"]
        ratio = f"{sn / tc:.2f}" if sn is not None and tc else "n/a"
        out += ["", (f"Inference peak memory, {name}: predict on (1, 3, {c.predict_size}, "
                     f"{c.predict_size}) inside scratchnet.no_grad() / torch.no_grad()")]
        out += table(["scratchnet MiB", "torch MiB", "ratio sn/torch"], [[mib(sn), mib(tc), ratio]])
    return out


def format_report(report: Report) -> str:
    c = report.config
    out = [
        (f"scratchnet vs torch.nn + autograd: {', '.join(m.name for m in report.models)}; "
         f"{c.image_size}×{c.image_size} RGB images, MSE loss, Adam(lr=1e-3)"),
        (f"device: {c.device} ({report.device_name}) · torch {report.torch_version} · "
         f"threads: {report.threads} · float32"),
        (f"timing: {c.repeats} interleaved repetitions after {c.warmup} warm-up steps; medians; "
         + ("glibc malloc thresholds pinned (see pin_malloc)" if report.pinned_malloc
            else "system malloc")),
    ]
    for model in report.models:
        out += ["", *format_model(model, report)]
    if c.memory:
        out += ["", f"peak memory method: {MEMORY_METHOD[torch.device(c.device).type]}"]
    return "\n".join(out)
