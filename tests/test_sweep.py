"""sweep: grids and random draws, one folder per run, resuming (finished runs skipped, the same
summary), Ctrl-C, processes, and the CLI's checks of its options."""
import csv
import json
import math
import statistics
from pathlib import Path

import pytest
import torch
from strategies import noisy_pairs

import scratchnet.sweep as sw
from scratchnet import cli
from scratchnet.data import save_pairs
from scratchnet.train import History, TrainingDiverged

pytest.importorskip("tensorboard")
pytestmark = pytest.mark.filterwarnings("ignore:.*runs ended below the noisy input:RuntimeWarning")

GRID = {"lr": [1e-3, 1e-2], "batch_size": [8], "channels": [4, 6]}


@pytest.fixture(scope="module")
def data():
    return noisy_pairs(32, 0), noisy_pairs(8, 1)


def run(data, out, settings=GRID, **kw) -> tuple[list[dict], list[str]]:
    lines = []
    rows = sw.sweep(settings, train_pairs=data[0], val_pairs=data[1], epochs=1, out=out,
                    log=lines.append, **{"device": "cpu", **kw})
    return rows, lines


def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def without_timing(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_grid_configs_fill_defaults_and_vary_the_last_setting_fastest():
    assert sw.grid_configs({"lr": [1e-3, 3e-3], "channels": [24, 48]}) == [
        {"lr": 1e-3, "batch_size": 32, "channels": 24},
        {"lr": 1e-3, "batch_size": 32, "channels": 48},
        {"lr": 3e-3, "batch_size": 32, "channels": 24},
        {"lr": 3e-3, "batch_size": 32, "channels": 48}]


@pytest.mark.parametrize("grid, says", [
    ({"lr": []}, "no values given for lr"),
    ({"lr": [-1e-3]}, "lr must be positive numbers, got -0.001"),
    ({"lr": [math.nan]}, "lr must be positive numbers, got nan"),
    ({"batch_size": [16.5]}, "batch_size must be positive integers, got 16.5"),
    ({"channels": [0]}, "channels must be positive integers, got 0"),
    ({"momentum": [0.9]}, "unknown setting 'momentum'"),
    ({"lr": [1e-3, 1e-3]}, "lr has a value twice"),
])
def test_bad_grids_are_named(grid, says):
    with pytest.raises(ValueError, match=says.replace("(", r"\(")):
        sw.grid_configs(grid)


@pytest.mark.parametrize("kw, says", [
    ({"settings": {"lr": [1e-3, 1.0000001e-3]}}, r"share a run folder \(lr0.001_bs32_ch48\)"),
    ({"max_train": 0}, "max_train must be a positive integer, got 0"),
    ({"seeds": 0}, "seeds must be a positive integer, got 0"),
    ({"settings": [{"lr": 1e-3}, {"lr": 1e-3, "channels": 48}]}, "is given twice"),
    pytest.param({"device": "cuda"}, "device 'cuda' is not available",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="has a GPU")),
])
def test_bad_sweeps_are_refused_before_any_file_is_written(data, tmp_path, kw, says):
    with pytest.raises(ValueError, match=says):
        run(data, tmp_path / "sweep", **kw)
    assert not (tmp_path / "sweep").exists()


def test_random_configs_are_reproducible_distinct_and_log_uniform():
    grid = {"lr": [1e-4, 1e-3, 1e-2], "batch_size": [16, 64], "channels": [24, 48]}
    drawn = sw.random_configs(grid, 200, seed=3)
    assert drawn == sw.random_configs(grid, 200, seed=3) != sw.random_configs(grid, 200, seed=4)
    assert len({tuple(s.values()) for s in drawn}) == 200
    lrs = [s["lr"] for s in drawn]
    assert min(lrs) >= 1e-4 and max(lrs) <= 1e-2
    assert 0.4 < sum(lr < 1e-3 for lr in lrs) / 200 < 0.6         # half below the log-midpoint
    assert {s["batch_size"] for s in drawn} == {16, 64}
    assert {s["channels"] for s in drawn} == {24, 48}
    with pytest.raises(ValueError, match="only 2 distinct settings"):
        sw.random_configs({"lr": [1e-3], "channels": [24, 48]}, 3)
    with pytest.raises(ValueError, match="k must be a positive number of settings, got 0"):
        sw.random_configs(grid, 0)


def test_an_interrupted_sweep_goes_on_with_the_runs_left_and_the_same_summary(data, tmp_path,
                                                                              monkeypatch):
    out = tmp_path / "sweep"
    rows, lines = run(data, out, seeds=2)
    assert [(r["lr"], r["channels"], r["seed"]) for r in rows] == [
        (lr, c, s) for lr in (1e-3, 1e-2) for c in (4, 6) for s in (0, 1)]
    assert len(lines) == 8 and lines[-1].startswith("[8/8] lr 0.01, batch size 8, 6 channels")
    first = read_csv(out / "summary.csv")
    assert [float(r["best_psnr"]) for r in first] == pytest.approx([r["best_psnr"] for r in rows],
                                                                   abs=1e-4)
    again = sw.read_rows(out / "summary.csv")
    assert [(r["lr"], r["channels"], r["seed"], r["status"]) for r in again] == \
        [(r["lr"], r["channels"], r["seed"], r["status"]) for r in rows]
    assert [r["best_psnr"] for r in again] == pytest.approx([r["best_psnr"] for r in rows],
                                                            abs=1e-4)
    with pytest.raises(ValueError, match="is not a sweep's summary"):
        sw.read_rows(out / "sweep.json")
    assert (out / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("lr0.001_bs8_ch4_seed0", "lr0.01_bs8_ch6_seed1"):
        assert len(list((out / name).glob("events.out.tfevents.*"))) == 1
        history = History(**json.loads((out / name / "result.json").read_text())["history"])
        assert history.epochs == 1

    (out / "lr0.01_bs8_ch4_seed1" / "result.json").unlink()         # stopped before its end
    trained = []
    train_run = sw._train_run
    monkeypatch.setattr(sw, "_train_run", lambda *a: trained.append(a[:2]) or train_run(*a))
    _, lines = run(data, out, seeds=2)
    assert trained == [({"lr": 1e-2, "batch_size": 8, "channels": 4}, 1)]
    assert lines[0] == f"7 of 8 runs already finished in {out}: skipped"
    assert without_timing(read_csv(out / "summary.csv")) == without_timing(first)
    assert len(list((out / "lr0.01_bs8_ch4_seed1").glob("events.out.tfevents.*"))) == 1

    with pytest.raises(ValueError, match="holds a sweep of 1 epoch on 32 training pairs with 8 "
                                         "validation pairs, not 1 epoch on 16"):
        run(data, out, max_train=16)


def test_ctrl_c_keeps_the_finished_runs_and_says_how_to_go_on(data, tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    fit, calls = sw.fit, []

    def fit_then_ctrl_c(*args, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return fit(*args, **kw)

    monkeypatch.setattr(sw, "fit", fit_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt, match="2 of 4 runs are finished in .* and kept; run "
                                                "the same sweep again to train the other 2"):
        run(data, out)
    assert len(list(out.glob("*/result.json"))) == 2 and len(read_csv(out / "summary.csv")) == 2
    monkeypatch.setattr(sw, "fit", fit)
    rows, lines = run(data, out)
    assert len(rows) == 4 and lines[0].startswith("2 of 4 runs already finished")


def test_a_run_that_diverges_is_finished_and_marked(data, tmp_path, monkeypatch):
    fit = sw.fit

    def diverge_at_high_lr(model, *args, optimizer, **kw):
        if optimizer.param_groups[0]["lr"] > 5e-3:
            raise TrainingDiverged("fit: the training loss became nan", 1, 3, History())
        return fit(model, *args, optimizer=optimizer, **kw)

    monkeypatch.setattr(sw, "fit", diverge_at_high_lr)
    rows, lines = run(data, tmp_path / "sweep", {"lr": [1e-3, 1e-2], "channels": [4]})
    assert rows[1]["status"] == "diverged at epoch 1, batch 3" and math.isnan(rows[1]["final_psnr"])
    assert lines[1].endswith("seed 0: diverged at epoch 1, batch 3")
    summary = sw.summarise(rows)
    assert [e["lr"] for e in summary] == [1e-3, 1e-2] and summary[1]["diverged"] == 1
    assert "(1 diverged)" in sw.format_summary(summary).splitlines()[2]


def test_summarise_gives_mean_and_spread_over_seeds_best_first():
    def row(lr, seed, best):
        return {"lr": lr, "batch_size": 16, "channels": 24, "seed": seed, "epochs": 1,
                "final_psnr": best - 0.1, "best_psnr": best, "best_epoch": 1, "seconds": 2.0,
                "status": "ok"}

    rows = [row(1e-3, 0, 25.0), row(1e-3, 1, 26.0), row(1e-2, 0, 27.0), row(1e-2, 1, 27.5),
            row(1e-1, 0, math.nan)]
    summary = sw.summarise(rows)
    assert [e["lr"] for e in summary] == [1e-2, 1e-3, 1e-1]
    assert summary[0]["best_psnr_mean"] == 27.25
    assert summary[0]["best_psnr_std"] == pytest.approx(statistics.stdev([27.0, 27.5]))
    assert summary[1]["final_psnr_mean"] == pytest.approx(25.4) and summary[0]["runs"] == 2
    table = sw.format_summary(summary).splitlines()
    assert "27.25 ± 0.35" in table[1] and "25.50 ± 0.71" in table[2] and "—" in table[3]


def test_jobs_train_in_processes_with_the_same_results(data, tmp_path):
    settings = [{"lr": 1e-3, "channels": 4, "batch_size": 8},
                {"lr": 3e-3, "channels": 4, "batch_size": 8}]
    here, _ = run(data, tmp_path / "here", settings)
    there, lines = run(data, tmp_path / "there", settings, jobs=2)
    assert sorted(lines) == sorted(f"[{i}/2] {line.split('] ', 1)[1]}"
                                   for i, line in zip((1, 2), lines))
    for a, b in zip(here, there):
        assert {k: v for k, v in a.items() if k not in ("seconds", "final_psnr", "best_psnr")} \
            == {k: v for k, v in b.items() if k not in ("seconds", "final_psnr", "best_psnr")}
        assert a["best_psnr"] == pytest.approx(b["best_psnr"], abs=1e-3)


# ------------------------------------------------------------------ the command


@pytest.fixture(scope="module")
def data_dir(data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    save_pairs(folder / "train_data.pkl", *data[0])
    save_pairs(folder / "val_data.pkl", *data[1])
    return folder


def test_the_command_trains_summarises_and_skips_finished_runs(data_dir, tmp_path, capsys):
    argv = ["sweep", "--lr", "1e-3,1e-2", "--batch-size", "8", "--channels", "4", "--epochs",
            "1", "--data-dir", str(data_dir), "--out", str(tmp_path / "sweep"), "--max-val", "4",
            "--device", "cpu"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "2 setting(s) × 1 seed(s), 1 epoch(s) each, on 32 pairs" in out
    assert "validating on 4 images" in out and "[2/2] lr 0.01" in out
    assert "best PSNR (dB)" in out and "summary.csv" in out and "summary.png" in out
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "2 of 2 runs already finished" in out and "[1/2]" not in out

    argv = ["sweep", "--lr", "1e-4,1e-2", "--random", "2", "--channels", "4", "--batch-size",
            "8", "--epochs", "1", "--data-dir", str(data_dir), "--out", str(tmp_path / "random"),
            "--device", "cpu"]
    assert cli.main(argv) == 0 and cli.main(argv) == 0
    assert "2 of 2 runs already finished" in capsys.readouterr().out   # the same draw


def test_ctrl_c_in_the_command_is_one_line_with_how_to_go_on(data_dir, tmp_path, capsys,
                                                             monkeypatch):
    monkeypatch.setattr(sw, "fit", lambda *a, **kw: (_ for _ in ()).throw(KeyboardInterrupt))
    code = cli.main(["sweep", "--channels", "4", "--epochs", "1", "--data-dir", str(data_dir),
                     "--out", str(tmp_path / "sweep")])
    err = capsys.readouterr().err.strip()
    assert code == 130 and err == (f"interrupted; 0 of 1 runs are finished in {tmp_path / 'sweep'} "
                                   "and kept; run the same sweep again to train the other 1")


@pytest.mark.parametrize("argv, says", [
    (["--lr", ""], "argument --lr: expected comma-separated positive numbers, got '' (empty)"),
    (["--lr=-1e-3"], "argument --lr: expected comma-separated positive numbers, got '-1e-3'"),
    (["--lr", "1e-3,x"],
     "argument --lr: expected comma-separated positive numbers, got '1e-3,x'"),
    (["--batch-size", "16,16"],
     "argument --batch-size: expected comma-separated positive integers, got '16,16' (repeated)"),
    (["--channels", "24.5"],
     "argument --channels: expected comma-separated positive integers, got '24.5'"),
    (["--random", "0"], "argument --random: expected a positive integer, got 0"),
    (["--seeds", "0"], "argument --seeds: expected a positive integer, got 0"),
    (["--jobs", "-2"], "argument --jobs: expected a positive integer, got -2"),
])
def test_bad_options_are_one_line_naming_the_option_and_value(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["sweep", *argv])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]
    assert exit_.value.code == 2 and errors == [f"scratchnet sweep: error: {says}"]
    assert err.startswith("usage: scratchnet sweep")


def test_an_unknown_option_is_refused_as_for_every_command(capsys):
    """argparse's top-level parser reports options no subcommand knows, with its usage."""
    for command in ("train", "sweep"):
        with pytest.raises(SystemExit) as exit_:
            cli.main([command, "--bogus"])
        err = capsys.readouterr().err
        assert exit_.value.code == 2
        assert err.splitlines()[-1] == "scratchnet: error: unrecognized arguments: --bogus"


def test_the_command_has_help_with_examples(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["sweep", "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    assert "--random K" in out and "examples:" in out and "python -m scratchnet sweep" in out


def test_the_shipped_fuller_sweep_is_the_grid_its_notes_describe():
    """notebooks/results/full_sweep.csv, drawn in notebook 12: every setting of the command in
    full_sweep.md, 3 seeds each, read back by read_rows."""
    results = Path(__file__).resolve().parents[1] / "notebooks" / "results"
    rows = sw.read_rows(results / "full_sweep.csv")
    notes = (results / "full_sweep.md").read_text(encoding="utf-8")
    assert "--lr 3e-4,1e-3,3e-3,1e-2,3e-2 --batch-size 16,64 --channels 24,48 --seeds 3" in notes
    settings = {(r["lr"], r["batch_size"], r["channels"]) for r in rows}
    assert settings == {(lr, b, c) for lr in (3e-4, 1e-3, 3e-3, 1e-2, 3e-2) for b in (16, 64)
                        for c in (24, 48)}
    assert sorted(r["seed"] for r in rows) == sorted(list(range(3)) * 20)
    assert all(r["epochs"] == 5 and r["status"] == "ok" for r in rows)
