"""`sweep`: train the course network for every combination (or a random sample) of learning
rates, batch sizes and widths, a few seeds each, and summarise the runs.

    rows = sweep({"lr": [1e-3, 3e-3], "batch_size": [16, 64], "channels": [24, 48]}, seeds=3,
                 epochs=5, out="runs/sweep", train_pairs=train, val_pairs=val, max_train=2000)
    print(format_summary(summarise(rows)))        # mean ± spread over seeds, best first
    plot_summary(rows)                            # a matplotlib Figure
    rows = read_rows("runs/sweep/summary.csv")    # the rows again, from the CSV

Each run trains `course_denoiser(channels)` with Adam at its lr in OUT/<run_name>/, writing its
TensorBoard events there, and ends by writing OUT/<run_name>/result.json atomically: a run with a
result is finished and skipped when the sweep runs again; any other starts over. OUT/sweep.json
records the epochs and data sizes, which a sweep must share to go on in OUT. OUT/summary.csv
(one row per finished run) is rewritten after each run, OUT/summary.png at the end.
"""
from __future__ import annotations

import csv
import itertools
import json
import math
import os
import random
import statistics
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from .device import resolve_device
from .files import atomic_write
from .metrics import psnr
from .models import course_denoiser
from .optim import Adam
from .tracking import summary_writer_class
from .train import Pairs, TrainingDiverged, check_pairs, fit

SETTINGS = ("lr", "batch_size", "channels")
DEFAULTS: dict[str, float | int] = {"lr": 1e-3, "batch_size": 32, "channels": 48}
COLUMNS = ("lr", "batch_size", "channels", "seed", "epochs", "final_psnr", "best_psnr",
           "best_epoch", "seconds", "status")
RESULT_FILE = "result.json"
MANIFEST_FILE = "sweep.json"
CSV_FILE = "summary.csv"
FIGURE_FILE = "summary.png"
Setting = dict[str, float | int]
Outcome = tuple[dict[str, Any], list[Warning]]        # a run's row and the warnings it raised


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep; the message says how many runs are finished and how to go on."""


def grid_configs(grid: Mapping[str, Sequence[float]]) -> list[Setting]:
    """Every combination of the grid's values ({"lr": [...], "batch_size": [...], "channels":
    [...]}), the last setting varying fastest; a setting left out takes its DEFAULTS value."""
    values = _check_grid(grid)
    return [dict(zip(SETTINGS, combo)) for combo in itertools.product(*values.values())]


def random_configs(grid: Mapping[str, Sequence[float]], k: int, seed: int = 0) -> list[Setting]:
    """k distinct settings drawn with random.Random(seed): lr log-uniform between the smallest
    and largest of grid["lr"] (rounded to 3 significant digits), batch_size and channels
    uniformly among the grid's values."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"random_configs: k must be a positive number of settings, got {k!r}")
    values = _check_grid(grid)
    low, high = math.log(min(values["lr"])), math.log(max(values["lr"]))
    rng = random.Random(seed)
    chosen: list[Setting] = []
    for _ in range(100 * k):
        setting = {"lr": float(f"{math.exp(rng.uniform(low, high)):.3g}"),
                   "batch_size": rng.choice(values["batch_size"]),
                   "channels": rng.choice(values["channels"])}
        if setting not in chosen:
            chosen.append(setting)
        if len(chosen) == k:
            return chosen
    raise ValueError(f"random_configs: only {len(chosen)} distinct settings found for k={k}: "
                     "give a wider learning-rate range, more batch sizes or more widths")


def run_name(setting: Mapping[str, float], seed: int) -> str:
    """The run's folder name, e.g. 'lr0.003_bs16_ch48_seed0'."""
    return f"lr{setting['lr']:g}_bs{setting['batch_size']}_ch{setting['channels']}_seed{seed}"


def sweep(settings: Mapping[str, Sequence[float]] | Sequence[Mapping[str, float]], *,
          train_pairs: Pairs, val_pairs: Pairs, seeds: int = 1, epochs: int = 10,
          out: str | os.PathLike = "runs/sweep", max_train: int | None = None,
          max_val: int | None = None, jobs: int = 1, device: str | torch.device = "auto",
          log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Train every setting with seeds 0 … seeds − 1 and return one row per run (COLUMNS), in
    that order; runs finished in `out` before are read, not trained again.

    settings: a grid (see grid_configs) or a list of settings (e.g. from random_configs).
    train_pairs, val_pairs: (a, b), each (N, 3, H, W) uint8 or float in 0..255; only the first
    max_train and max_val are used. jobs: runs trained at a time, each in its own process.
    log: called with a line per finished run. A run that diverges is finished with status
    'diverged …' and final_psnr NaN. Ctrl-C raises SweepInterrupted: finished runs are kept.
    """
    settings = grid_configs(settings) if isinstance(settings, Mapping) else \
        _check_settings(settings)
    for name, value in (("seeds", seeds), ("epochs", epochs), ("jobs", jobs),
                        ("max_train", 1 if max_train is None else max_train),
                        ("max_val", 1 if max_val is None else max_val)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"sweep: {name} must be a positive integer, got {value!r}")
    names = [run_name(setting, 0).removesuffix("_seed0") for setting in settings]
    if len(set(names)) != len(names):
        raise ValueError("sweep: two settings print alike and would share a run folder "
                         f"({', '.join(sorted({n for n in names if names.count(n) > 1}))}): "
                         "give learning rates that differ in their first 6 digits")
    train = tuple(t[:max_train].clone() for t in check_pairs(train_pairs, "sweep: train_pairs"))
    val = tuple(t[:max_val].clone() for t in check_pairs(val_pairs, "sweep: val_pairs"))
    device = resolve_device(device)
    summary_writer_class()
    out = Path(out)
    _claim(out, {"epochs": epochs, "train_pairs": len(train[0]), "val_pairs": len(val[0])})
    runs = [(setting, seed) for setting in settings for seed in range(seeds)]
    results = {i: _read_result(out / run_name(*run) / RESULT_FILE) for i, run in enumerate(runs)
               if (out / run_name(*run) / RESULT_FILE).exists()}
    if results:
        log(f"{len(results)} of {len(runs)} runs already finished in {out}: skipped")
    todo = [(i, (setting, seed, epochs, str(out / run_name(setting, seed)), device))
            for i, (setting, seed) in enumerate(runs) if i not in results]
    try:
        for i, (row, messages) in _train_all(todo, train, val, jobs):
            results[i] = row
            for warning in messages:
                warnings.warn(f"{run_name(*runs[i])}: {warning}", type(warning), stacklevel=2)
            log(f"[{len(results)}/{len(runs)}] {_describe(row)}")
            write_csv([results[j] for j in sorted(results)], out / CSV_FILE)
    except KeyboardInterrupt:
        raise SweepInterrupted(f"{len(results)} of {len(runs)} runs are finished in {out} and "
                               f"kept; run the same sweep again to train the other "
                               f"{len(runs) - len(results)}") from None
    rows = [results[i] for i in range(len(runs))]
    write_csv(rows, out / CSV_FILE)
    noisy_psnr = float(psnr(*(t.to(torch.float32) / 255 for t in val)))
    plot_summary(rows, out / FIGURE_FILE, reference=noisy_psnr)
    worse = sum(not r["best_psnr"] >= noisy_psnr for r in rows)
    if worse:
        warnings.warn(f"{worse} of {len(rows)} runs ended below the noisy input's PSNR, "
                      f"{noisy_psnr:.2f} dB (their networks make the images worse): train "
                      "longer or lower the learning rate", RuntimeWarning,
                      stacklevel=2)
    return rows


def _check_value(key: str, value: Any) -> float | int:
    """A setting's value: lr a positive finite number, batch_size and channels positive ints."""
    if key == "lr":
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not 0 < value < math.inf:
            raise ValueError(f"sweep: lr must be positive numbers, got {value!r}")
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"sweep: {key} must be positive integers, got {value!r}")
    return value


def _check_grid(grid: Mapping[str, Sequence[float]]) -> dict[str, list[float | int]]:
    """The grid's values for each of SETTINGS (DEFAULTS for those left out), checked."""
    unknown = [k for k in grid if k not in SETTINGS]
    if unknown:
        raise ValueError(f"sweep: unknown setting {unknown[0]!r}; the settings are "
                         f"{', '.join(SETTINGS)}")
    values = {}
    for key in SETTINGS:
        given = list(grid.get(key, [DEFAULTS[key]]))
        if not given:
            raise ValueError(f"sweep: no values given for {key}")
        values[key] = [_check_value(key, v) for v in given]
        if len(set(values[key])) != len(values[key]):
            raise ValueError(f"sweep: {key} has a value twice: {given}")
    return values


def _check_settings(settings: Sequence[Mapping[str, float]]) -> list[Setting]:
    """Each setting completed with DEFAULTS and checked; none twice."""
    checked = []
    for setting in settings:
        values = _check_grid({k: [v] for k, v in setting.items()})
        checked.append({k: v[0] for k, v in values.items()})
    if not checked:
        raise ValueError("sweep: no settings given")
    for setting in checked:
        if checked.count(setting) > 1:
            raise ValueError(f"sweep: the setting {setting} is given twice")
    return checked


def _claim(out: Path, manifest: dict[str, int]) -> None:
    """Record the sweep's epochs and data sizes in out/sweep.json, or check that they equal the
    ones recorded there."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"sweep: {out} is a file: give a folder for the sweep's runs")
    path = out / MANIFEST_FILE
    if path.exists():
        recorded = json.loads(path.read_text(encoding="utf-8"))
        if recorded != manifest:
            raise ValueError(f"{out} holds a sweep of {_sizes(recorded)}, not {_sizes(manifest)}: "
                             "choose another folder for this one, or the same epochs and data "
                             "sizes to go on with it")
        return
    atomic_write(path, lambda f: json.dump(manifest, f), text=True)


def _sizes(manifest: Mapping[str, int]) -> str:
    epochs = manifest.get("epochs")
    return (f"{epochs} epoch{'' if epochs == 1 else 's'} on {manifest.get('train_pairs')} "
            f"training pairs with {manifest.get('val_pairs')} validation pairs")


def _read_result(path: Path) -> dict[str, Any]:
    """A finished run's row (COLUMNS) from its result.json."""
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
        return {k: result[k] for k in COLUMNS}
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{path} is not a result written by scratchnet's sweep: delete it to "
                         "train that run again") from None


def _train_all(todo: list[tuple[int, tuple]], train: Pairs, val: Pairs,
               jobs: int) -> Iterator[tuple[int, Outcome]]:
    """Yield (index, (row, warnings)) for each run of todo as it finishes: here when jobs is 1,
    else in a pool of `jobs` processes (spawned, sharing the CPUs), stopped on Ctrl-C."""
    if jobs == 1 or len(todo) < 2:
        for i, task in todo:
            yield i, _train_run(*task, train, val)
        return
    import multiprocessing

    jobs = min(jobs, len(todo))
    threads = max(1, _cpu_count() // jobs)
    pool = multiprocessing.get_context("spawn").Pool(jobs, _worker_init, (train, val, threads))
    try:
        yield from pool.imap_unordered(_train_in_worker, todo)
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.close()
        pool.join()


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                                     # not Linux
        return os.cpu_count() or 1


_worker_data: tuple[Pairs, Pairs] | None = None


def _worker_init(train: Pairs, val: Pairs, threads: int) -> None:
    """In each worker process: the data, `threads` threads, Ctrl-C left to the parent, and the
    parent's SIGTERM (after Ctrl-C) raising SystemExit, so that the worker's clean-up runs."""
    import signal

    global _worker_data
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit)
    torch.set_num_threads(threads)
    _worker_data = (train, val)


def _exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _train_in_worker(item: tuple[int, tuple]) -> tuple[int, Outcome]:
    i, task = item
    return i, _train_run(*task, *_worker_data)


def _train_run(setting: Setting, seed: int, epochs: int, folder: str, device: torch.device,
               train: Pairs, val: Pairs) -> Outcome:
    """Train one run from scratch in `folder` (events from an earlier, unfinished attempt are
    removed) and write its result.json. → (its row, the warnings it raised, but fit's about a
    PSNR below the noisy input's: sweep sums those up)."""
    folder = Path(folder)
    for stale in folder.glob("events.out.tfevents.*"):
        stale.unlink()
    torch.manual_seed(seed)
    model = course_denoiser(setting["channels"])
    began = time.perf_counter()
    status = "ok"
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("ignore", "fit: the best validation PSNR", RuntimeWarning)
        try:
            history = fit(model, train, val, epochs=epochs, batch_size=setting["batch_size"],
                          optimizer=Adam(model.parameters(), lr=setting["lr"]), device=device,
                          seed=seed, progress=False, log_dir=folder)
        except TrainingDiverged as e:
            history, status = e.history, f"diverged at epoch {e.epoch}, batch {e.batch}"
    row = {**setting, "seed": seed, "epochs": epochs,
           "final_psnr": history.val_psnr[-1] if status == "ok" else math.nan,
           "best_psnr": history.best_psnr if history.val_psnr else math.nan,
           "best_epoch": history.best_epoch, "seconds": time.perf_counter() - began,
           "status": status}
    atomic_write(folder / RESULT_FILE, lambda f: json.dump(
        {**row, "history": asdict(history)}, f, indent=1), text=True)
    return row, [w.message for w in caught]


def _describe(row: Mapping[str, Any]) -> str:
    """One line for a finished run."""
    head = (f"lr {row['lr']:g}, batch size {row['batch_size']}, {row['channels']} channels, "
            f"seed {row['seed']}: ")
    if row["status"] != "ok":
        return head + row["status"]
    return head + (f"best {row['best_psnr']:.2f} dB (epoch {row['best_epoch']}), final "
                   f"{row['final_psnr']:.2f} dB, {row['seconds']:.1f} s")


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """One line per run, COLUMNS (PSNRs to 4 decimals, seconds to 2), written atomically."""
    def write(f) -> None:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([f"{row['lr']:g}", row["batch_size"], row["channels"], row["seed"],
                             row["epochs"], f"{row['final_psnr']:.4f}",
                             f"{row['best_psnr']:.4f}", row["best_epoch"],
                             f"{row['seconds']:.2f}", row["status"]])

    return atomic_write(path, write, text=True)


def read_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a summary CSV that write_csv wrote (a sweep's summary.csv), typed again:
    numbers as int or float, the status as text."""
    types = {"lr": float, "batch_size": int, "channels": int, "seed": int, "epochs": int,
             "final_psnr": float, "best_psnr": float, "best_epoch": int, "seconds": float,
             "status": str}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path} is not a sweep's summary: its columns are "
                             f"{', '.join(reader.fieldnames or ())}, not {', '.join(COLUMNS)}")
        return [{k: types[k](v) for k, v in row.items()} for row in reader]


def summarise(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per setting: its SETTINGS, runs (seeds), diverged (how many), best_psnr_mean,
    best_psnr_std, final_psnr_mean, final_psnr_std (dB; std over seeds, NaN for one seed),
    seconds_mean; the best mean best_psnr first, NaN last."""
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in SETTINGS), []).append(row)
    summary = []
    for key, runs in groups.items():
        entry: dict[str, Any] = dict(zip(SETTINGS, key))
        entry["runs"] = len(runs)
        entry["diverged"] = sum(r["status"] != "ok" for r in runs)
        for column in ("best_psnr", "final_psnr"):
            values = [float(r[column]) for r in runs]
            entry[f"{column}_mean"] = statistics.fmean(values)
            entry[f"{column}_std"] = statistics.stdev(values) if len(values) > 1 else math.nan
        entry["seconds_mean"] = statistics.fmean(float(r["seconds"]) for r in runs)
        summary.append(entry)
    return sorted(summary, key=lambda e: math.inf if math.isnan(e["best_psnr_mean"])
                  else -e["best_psnr_mean"])


def format_summary(summary: Sequence[Mapping[str, Any]]) -> str:
    """summarise's rows as a text table: mean ± std over seeds, in dB."""
    def cell(mean: float, std: float) -> str:
        if math.isnan(mean):
            return "—"
        return f"{mean:.2f}" + ("" if math.isnan(std) else f" ± {std:.2f}")

    header = (f"{'lr':>9}  {'batch':>5}  {'channels':>8}  {'runs':>4}  {'best PSNR (dB)':>14}  "
              f"{'final PSNR (dB)':>15}  {'s/run':>6}")
    lines = [header]
    for e in summary:
        lines.append(f"{e['lr']:>9g}  {e['batch_size']:>5}  {e['channels']:>8}  {e['runs']:>4}  "
                     f"{cell(e['best_psnr_mean'], e['best_psnr_std']):>14}  "
                     f"{cell(e['final_psnr_mean'], e['final_psnr_std']):>15}  "
                     f"{e['seconds_mean']:>6.1f}"
                     + (f"  ({e['diverged']} diverged)" if e["diverged"] else ""))
    return "\n".join(lines)


def plot_summary(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike | None = None,
                 reference: float | None = None):
    """A figure of the best validation PSNR against the learning rate: one colour per batch
    size and width, a dot per run, a line through the means over seeds with ± std bars;
    `reference`, the noisy input's PSNR, in the title. Saved as PNG to `path` (atomically) when
    given. → the matplotlib Figure."""
    from matplotlib.figure import Figure

    summary = summarise(rows)
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.add_subplot()
    groups = sorted({(e["batch_size"], e["channels"]) for e in summary})
    for n, (batch_size, channels) in enumerate(groups):
        colour = f"C{n % 10}"
        label = f"batch {batch_size}, {channels} channels"
        points = [(r["lr"], r["best_psnr"]) for r in rows
                  if (r["batch_size"], r["channels"]) == (batch_size, channels)]
        ax.scatter(*zip(*points), s=12, color=colour, alpha=0.5)
        means = sorted((e["lr"], e["best_psnr_mean"], e["best_psnr_std"]) for e in summary
                       if (e["batch_size"], e["channels"]) == (batch_size, channels))
        lrs, mean, std = zip(*means)
        ax.errorbar(lrs, mean, yerr=[0 if math.isnan(s) else s for s in std], color=colour,
                    marker="o", capsize=3, label=label)
    ax.set_xscale("log")
    lrs = sorted({e["lr"] for e in summary})
    if len(lrs) <= 8:
        ax.set_xticks(lrs, [f"{lr:g}" for lr in lrs])
        ax.minorticks_off()
    ax.set_xlabel("learning rate (Adam)")
    ax.set_ylabel("best validation PSNR (dB)")
    seeds = max(e["runs"] for e in summary)
    ax.set_title(f"validation PSNR by setting, {seeds} seed{'s' if seeds > 1 else ''} each"
                 + (" (bars: ± std)" if seeds > 1 else "")
                 + ("" if reference is None else f"; noisy input {reference:.2f} dB"),
                 fontsize="medium")
    ax.legend(fontsize="small")
    if path is not None:
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120))
    return fig

