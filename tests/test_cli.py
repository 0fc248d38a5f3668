"""`python -m scratchnet`: help texts, and each subcommand end to end on tiny data."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from scratchnet import cli
from scratchnet.data import load_pairs
from scratchnet.train import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def test_module_entry_point_prints_help():
    result = subprocess.run([sys.executable, "-m", "scratchnet", "--help"], capture_output=True,
                            text=True, cwd=ROOT, timeout=120, check=False)
    assert result.returncode == 0
    for word in ("data", "train", "evaluate", "denoise", "benchmark", "examples:"):
        assert word in result.stdout


@pytest.mark.parametrize("command, option", [
    ("data", "--from-folder"), ("train", "--resume"), ("evaluate", "--checkpoint"),
    ("denoise", "--model"),
])
def test_each_subcommand_has_help_with_examples(command, option, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert option in out and "examples:" in out and f"python -m scratchnet {command}" in out


def test_benchmark_is_delegated(monkeypatch):
    import scratchnet.benchmark

    seen = []
    monkeypatch.setattr(scratchnet.benchmark, "main", lambda argv: seen.append(argv) or 0)
    assert cli.main(["benchmark", "--quick", "--device", "cpu"]) == 0
    assert seen == [["--quick", "--device", "cpu"]]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    assert cli.main(["data", "--dir", str(folder), "--n-train", "96", "--n-val", "24",
                     "--seed", "1"]) == 0
    return folder


def test_data_writes_course_files_and_keeps_existing_ones(data_dir, capsys):
    a, b = load_pairs(data_dir / "train_data.pkl")
    noisy, clean = load_pairs(data_dir / "val_data.pkl")
    assert a.shape == b.shape == (96, 3, 32, 32) and noisy.shape == clean.shape == (24, 3, 32, 32)
    stamp = (data_dir / "train_data.pkl").stat().st_mtime_ns
    assert cli.main(["data", "--dir", str(data_dir), "--n-train", "8"]) == 0
    assert "exists; kept (use --force" in capsys.readouterr().out
    assert (data_dir / "train_data.pkl").stat().st_mtime_ns == stamp
    assert load_pairs(data_dir / "train_data.pkl")[0].shape[0] == 96


def test_data_force_noise_options_and_image_folders(tmp_path):
    out = tmp_path / "poisson"
    assert cli.main(["data", "--dir", str(out), "--n-train", "8", "--n-val", "4", "--noise",
                     "poisson", "--peak", "5"]) == 0
    assert cli.main(["data", "--dir", str(out), "--n-train", "16", "--n-val", "4",
                     "--force"]) == 0
    assert load_pairs(out / "train_data.pkl")[0].shape[0] == 16
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(photos / f"{i}.png")
    mine = tmp_path / "mine"
    assert cli.main(["data", "--from-folder", str(photos), "--dir", str(mine), "--n-train", "8",
                     "--n-val", "4"]) == 0
    assert load_pairs(mine / "val_data.pkl")[0].shape == (4, 3, 32, 32)
    assert cli.main(["data", "--dir", str(tmp_path / "x"), "--sigma", "10", "--noise",
                     "poisson"]) == 1


def test_train_evaluate_and_resume(data_dir, tmp_path, capsys):
    ckpt, weights = tmp_path / "run.pth", tmp_path / "weights.pth"
    common = ["--model", "course", "--channels", "8", "--data-dir", str(data_dir),
              "--out", str(ckpt), "--no-progress", "--batch-size", "32", "--device", "cpu"]
    assert cli.main(["train", *common, "--epochs", "1", "--export", str(weights)]) == 0
    out = capsys.readouterr().out
    assert "val PSNR" in out and str(ckpt) in out
    assert load_checkpoint(ckpt)["epoch"] == 1
    state = torch.load(weights, weights_only=True)
    assert set(state) == set(load_checkpoint(ckpt)["best_model"])
    assert cli.main(["train", *common, "--epochs", "2", "--resume", "--optimizer", "adam"]) == 0
    assert load_checkpoint(ckpt)["epoch"] == 2
    capsys.readouterr()
    assert cli.main(["evaluate", "--checkpoint", str(ckpt), "--model", "course", "--data-dir",
                     str(data_dir), "--no-baselines", "--device", "cpu"]) == 0
    table = capsys.readouterr().out
    assert "24 validation images" in table
    rows = {line.split("  ")[0]: line for line in table.splitlines()}
    assert "noisy input" in rows and "course (shipped weights)" in rows
    assert any(str(ckpt) in label and "epoch" in label for label in rows)


def table_rows(out: str) -> dict[str, list[str]]:
    """evaluate's table: {method: [PSNR, images, seconds, words of the notes…]}."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("method"))
    rows = {}
    for line in lines[start + 1:]:
        if line.strip():
            label = line.split("  ")[0]
            rows[label] = line[len(label):].split()
    return rows


def test_evaluate_prints_the_classical_baselines(data_dir, capsys):
    assert cli.main(["evaluate", "--model", "course", "--data-dir", str(data_dir),
                     "--max-val", "6", "--every", "3", "--tune-on", "3", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "2 validation images" in out and "every 3rd of 6" in out
    rows = table_rows(out)
    assert list(rows) == ["noisy input", "non-local means", "total variation", "BM3D",
                          "course (shipped weights)"]
    assert all(row[1] == "2" for row in rows.values())           # the images column
    assert "h=" in out and "weight=" in out and "sigma=" in rows["BM3D"][3]
    assert float(rows["BM3D"][0]) > float(rows["noisy input"][0]) + 4


def test_evaluate_takes_subsets_and_gives_the_same_figures_for_any_jobs(data_dir, capsys):
    common = ["evaluate", "--model", "course", "--data-dir", str(data_dir), "--max-val", "20",
              "--every", "2", "--tune-on", "4", "--baselines", "tv,nlm", "--device", "cpu",
              "--no-progress"]
    tables = []
    for jobs in ("1", "2"):
        assert cli.main([*common, "--jobs", jobs]) == 0
        out, err = capsys.readouterr()
        assert err == ""
        assert "10 validation images" in out and "every 2nd of 20" in out
        tables.append({k: v[:2] + v[3:] for k, v in table_rows(out).items()})  # not the time
    assert tables[0] == tables[1]
    assert list(tables[0]) == ["noisy input", "total variation", "non-local means",
                               "course (shipped weights)"]
    assert all(row[1] == "10" for row in tables[0].values())


@pytest.mark.parametrize("argv, says", [
    (["evaluate", "--every", "0"], "argument --every: expected a positive integer, got 0"),
    (["evaluate", "--jobs", "0"], "argument --jobs: expected a positive integer, got 0"),
    (["evaluate", "--baselines", "nlm,wiener"],
     "argument --baselines: expected a comma-separated list of nlm, tv, bm3d"),
    (["evaluate", "--baselines", "nlm,nlm"], "(repeated)"),
    (["evaluate", "--baselines", ""], "(empty)"),
    (["evaluate", "--baselines", "nlm", "--no-baselines"], "not allowed with argument"),
    (["denoise", "a.png", "b.png", "--tile", "-1"], "argument --tile: expected an integer ≥ 0"),
])
def test_evaluate_and_denoise_flags_are_checked(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    assert says in capsys.readouterr().err


def test_train_reports_errors_without_a_traceback(tmp_path, capsys):
    assert cli.main(["train", "--train", str(tmp_path / "missing.pkl"), "--val",
                     str(tmp_path / "missing_val.pkl"), "--no-progress"]) == 1
    assert "scratchnet train: error:" in capsys.readouterr().err


@pytest.mark.parametrize("size", [(22, 30), (3, 5)])
def test_denoise_an_image_of_any_size(tmp_path, size):
    h, w = size
    src, dst = tmp_path / "noisy.png", tmp_path / "out" / "clean.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(src)
    assert cli.main(["denoise", str(src), str(dst), "--model", "course", "--device", "cpu"]) == 0
    with Image.open(dst) as img:
        assert img.size == (w, h) and img.mode == "RGB"
    assert [p.name for p in dst.parent.iterdir()] == ["clean.png"]


def test_denoise_in_tiles_gives_the_whole_image_result(tmp_path, capsys):
    src = tmp_path / "noisy.png"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (45, 70, 3), dtype=np.uint8)).save(src)
    results = {}
    for tile in ("0", "24"):
        dst = tmp_path / f"tile{tile}.png"
        assert cli.main(["denoise", str(src), str(dst), "--model", "unet", "--device", "cpu",
                         "--tile", tile, "--no-progress"]) == 0
        assert capsys.readouterr().err == ""
        with Image.open(dst) as img:
            results[tile] = np.asarray(img, dtype=np.int16)
    assert results["0"].shape == (45, 70, 3)
    assert np.abs(results["0"] - results["24"]).max() <= 1       # rounding of equal floats
    assert (results["0"] == results["24"]).mean() > 0.999
    assert cli.main(["denoise", str(src), str(tmp_path / "bar.png"), "--model", "course",
                     "--device", "cpu", "--tile", "16"]) == 0
    assert "tile" in capsys.readouterr().err                     # the progress bar
