"""The CLI with bad files, bad flags, interruptions and full disks: one line that names the file
or flag, exit status 1, nothing half-written, nothing lost."""
import errno
import os
import stat

import numpy as np
import pytest
import torch
from PIL import Image

from scratchnet import cli, files
from scratchnet.data import load_pairs, save_pairs
from scratchnet.train import load_checkpoint


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    assert cli.main(["data", "--data-dir", str(folder), "--n-train", "64", "--n-val", "16"]) == 0
    return folder


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    """A one-epoch checkpoint of a small course network."""
    ckpt = tmp_path_factory.mktemp("runs") / "course.pth"
    assert cli.main(["train", "--channels", "8", "--epochs", "1", "--data-dir", str(data_dir),
                     "--out", str(ckpt), "--no-progress", "--device", "cpu"]) == 0
    return ckpt


def run(capsys, *argv: str) -> tuple[int, str]:
    """→ (exit status, stderr); stderr must be free of tracebacks."""
    code = cli.main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def one_error(capsys, *argv: str) -> str:
    code, err = run(capsys, *argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and lines[0].startswith(f"scratchnet {argv[0]}: error:")
    assert "weights_only=False" not in err
    return lines[0]


def photo(path, h=20, w=28, seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


# ------------------------------------------------------------------ bad input files

def test_denoise_refuses_a_file_that_is_not_an_image(tmp_path, capsys):
    (tmp_path / "notes.png").write_text("not an image")
    line = one_error(capsys, "denoise", str(tmp_path / "notes.png"), str(tmp_path / "o.png"))
    assert "notes.png is not a readable image" in line


def test_denoise_refuses_a_truncated_image(tmp_path, capsys):
    src = photo(tmp_path / "p.jpg", 64, 64)
    src.write_bytes(src.read_bytes()[:300])
    line = one_error(capsys, "denoise", str(src), str(tmp_path / "o.png"), "--model", "course")
    assert "p.jpg is not a readable image (the file is truncated or damaged)" in line
    assert not (tmp_path / "o.png").exists()


def test_denoise_refuses_a_folder_as_input(tmp_path, capsys):
    line = one_error(capsys, "denoise", str(tmp_path), str(tmp_path / "o.png"))
    assert f"{tmp_path} is a folder, not an image file" in line


@pytest.mark.parametrize("name, says", [("out", "no image suffix"),
                                        ("out.q2313pqb", "unknown image suffix '.q2313pqb'")])
def test_denoise_output_needs_an_image_name(tmp_path, capsys, name, says):
    src = photo(tmp_path / "in.png")
    line = one_error(capsys, "denoise", str(src), str(tmp_path / name))
    assert says in line and ".png" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_denoise_output_cannot_be_a_folder(tmp_path, capsys):
    src = photo(tmp_path / "in.png")
    (tmp_path / "outdir").mkdir()
    line = one_error(capsys, "denoise", str(src), str(tmp_path / "outdir"))
    assert "is a folder: give a file name such as" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("command", ["denoise", "evaluate", "train"])
def test_cuda_without_a_gpu_is_one_line(tmp_path, capsys, data_dir, command):
    args = {"denoise": [str(photo(tmp_path / "in.png")), str(tmp_path / "o.png")],
            "evaluate": ["--data-dir", str(data_dir), "--no-baselines", "--model", "course"],
            "train": ["--data-dir", str(data_dir), "--out", str(tmp_path / "c.pth"),
                      "--epochs", "1"]}[command]
    line = one_error(capsys, command, *args, "--device", "cuda")
    assert "'cuda' is not available" in line and "use cpu" in line


def _corrupt_files(folder, good):
    data = good.read_bytes()
    folder.mkdir()
    (folder / "half.pth").write_bytes(data[:len(data) // 2])
    (folder / "empty.pth").write_bytes(b"")
    (folder / "noise.pth").write_bytes(os.urandom(2000))

    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    torch.save({"model": Evil()}, folder / "evil.pth")
    torch.save({"0.weight": torch.zeros(3)}, folder / "bare.pth")
    return sorted(folder.iterdir())


@pytest.mark.parametrize("command", ["evaluate", "denoise"])
def test_corrupt_checkpoints_are_one_line_naming_the_file(trained, data_dir, tmp_path, capsys,
                                                          command):
    src = photo(tmp_path / "in.png")
    for bad in _corrupt_files(tmp_path / "bad", trained):
        extra = (["--data-dir", str(data_dir), "--no-baselines"] if command == "evaluate"
                 else [str(src), str(tmp_path / "o.png")])
        line = one_error(capsys, command, *extra, "--checkpoint", str(bad))
        assert str(bad) in line and "is not a checkpoint written by scratchnet" in line
        assert "this must never run" not in capsys.readouterr().out
    assert not (tmp_path / "o.png").exists()


def test_train_refuses_a_corrupt_checkpoint_to_resume(trained, data_dir, tmp_path, capsys):
    bad = tmp_path / "half.pth"
    bad.write_bytes(trained.read_bytes()[:500])
    line = one_error(capsys, "train", "--data-dir", str(data_dir), "--out", str(bad), "--resume")
    assert "half.pth is not a checkpoint" in line and "truncated" in line


def test_a_corrupt_data_file_is_one_line_without_unsafe_advice(tmp_path, capsys):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    torch.save((Evil(), Evil()), tmp_path / "val_data.pkl")
    line = one_error(capsys, "evaluate", "--data-dir", str(tmp_path), "--no-baselines",
                     "--model", "course")
    assert "val_data.pkl is not a course data file" in line and "refuses to unpickle" in line


def test_an_empty_validation_file_is_named(tmp_path, capsys):
    empty = torch.zeros(0, 3, 32, 32, dtype=torch.uint8)
    save_pairs(tmp_path / "val_data.pkl", empty, empty)
    line = one_error(capsys, "evaluate", "--data-dir", str(tmp_path), "--no-baselines",
                     "--model", "course")
    assert f"{tmp_path / 'val_data.pkl'} holds no images" in line and "--val" in line


def test_a_full_disk_is_one_line_and_keeps_the_old_file(tmp_path, capsys, monkeypatch):
    src = photo(tmp_path / "in.png")
    out = photo(tmp_path / "out.png", seed=5)
    before = out.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    line = one_error(capsys, "denoise", str(src), str(out), "--model", "course")
    assert f"could not write {out}: the disk is full" in line
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "out.png"]


def test_a_truncated_photo_in_a_folder_is_skipped_with_a_count(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        photo(photos / f"{i}.jpg", 64, 80, seed=i)
    cut = photos / "1.jpg"
    cut.write_bytes(cut.read_bytes()[:400])
    code, err = run(capsys, "data", "--from-folder", str(photos), "--data-dir",
                    str(tmp_path / "d"), "--n-train", "8", "--n-val", "4")
    assert code == 0
    assert "warning:" in err and "skipped 1 unreadable image file" in err
    assert load_pairs(tmp_path / "d" / "train_data.pkl")[0].shape == (8, 3, 32, 32)


# ------------------------------------------------------------------ flags

@pytest.mark.parametrize("argv, flag, value", [
    (["data", "--sigma", "-5"], "--sigma", "-5"),
    (["data", "--seed", "-1"], "--seed", "-1"),
    (["data", "--n-train", "-3"], "--n-train", "-3"),
    (["train", "--max-train", "0"], "--max-train", "0"),
    (["train", "--max-train", "-5"], "--max-train", "-5"),
    (["train", "--epochs", "0"], "--epochs", "0"),
    (["train", "--lr=-1e-3"], "--lr", "-1e-3"),
    (["train", "--batch-size", "0"], "--batch-size", "0"),
    (["evaluate", "--max-val", "0"], "--max-val", "0"),
    (["grade", "x", "--jobs", "0"], "--jobs", "0"),
])
def test_out_of_range_flags_are_named_with_the_value_given(capsys, argv, flag, value):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}" in err and value in err


def test_a_noise_flag_of_another_noise_model_is_named(tmp_path, capsys):
    line = one_error(capsys, "data", "--data-dir", str(tmp_path), "--sigma", "10", "--noise",
                     "poisson")
    assert "--sigma does not apply to --noise poisson (it takes --peak)" in line


def test_data_dir_is_one_name_everywhere_and_dir_an_alias(tmp_path, capsys):
    for flag in ("--data-dir", "--dir"):
        folder = tmp_path / flag.strip("-")
        assert cli.main(["data", flag, str(folder), "--n-train", "4", "--n-val", "2"]) == 0
        assert (folder / "train_data.pkl").exists()
    for command in ("train", "evaluate"):
        args = cli.build_parser().parse_args([command, "--dir", "x"])
        assert str(args.data_dir) == "x"
    for command in ("data", "train", "evaluate"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        assert "--data-dir" in capsys.readouterr().out


# ------------------------------------------------------------------ work that must not be lost

def test_train_refuses_to_replace_a_checkpoint_without_resume_or_force(trained, data_dir,
                                                                        tmp_path, capsys):
    ckpt = tmp_path / "run.pth"
    ckpt.write_bytes(trained.read_bytes())
    before = ckpt.read_bytes()
    line = one_error(capsys, "train", "--channels", "8", "--data-dir", str(data_dir), "--out",
                     str(ckpt), "--epochs", "1", "--no-progress")
    assert "run.pth exists (a course checkpoint, epoch 1, best" in line
    assert "--resume" in line and "--force" in line
    assert ckpt.read_bytes() == before
    assert cli.main(["train", "--channels", "8", "--data-dir", str(data_dir), "--out",
                     str(ckpt), "--epochs", "1", "--no-progress", "--force"]) == 0


def test_export_may_not_be_the_checkpoint(data_dir, tmp_path, capsys):
    ckpt = tmp_path / "run.pth"
    line = one_error(capsys, "train", "--data-dir", str(data_dir), "--out", str(ckpt),
                     "--export", str(tmp_path / "." / "run.pth"))
    assert "is the checkpoint file itself" in line
    assert not ckpt.exists()


def test_resume_takes_the_checkpoints_model_and_applies_a_new_lr(trained, data_dir, tmp_path,
                                                                 capsys):
    ckpt = tmp_path / "run.pth"
    ckpt.write_bytes(trained.read_bytes())
    assert cli.main(["train", "--data-dir", str(data_dir), "--out", str(ckpt), "--resume",
                     "--epochs", "2", "--lr", "1e-4", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "resuming" in out and "learning rate 0.0001 (the checkpoint's was 0.001)" in out
    saved = load_checkpoint(ckpt)
    assert saved["epoch"] == 2 and saved["spec"]["kwargs"] == {"channels": 8}
    assert saved["optimizer"]["param_groups"][0]["lr"] == 1e-4


def test_resume_when_all_epochs_are_done_says_so(trained, data_dir, tmp_path, capsys):
    ckpt = tmp_path / "run.pth"
    ckpt.write_bytes(trained.read_bytes())
    assert cli.main(["train", "--data-dir", str(data_dir), "--out", str(ckpt), "--resume",
                     "--epochs", "1", "--no-progress"]) == 0
    assert "already holds 1 epochs: nothing to train" in capsys.readouterr().out


def test_a_saturated_run_warns(data_dir, tmp_path, capsys):
    code, err = run(capsys, "train", "--channels", "8", "--data-dir", str(data_dir), "--out",
                    str(tmp_path / "c.pth"), "--epochs", "1", "--lr", "1e3", "--no-progress",
                    "--max-train", "32")
    assert code == 0
    assert "scratchnet train: warning: fit: the best validation PSNR" in err
    assert "is below the noisy input's" in err


def test_evaluate_a_checkpoint_alone(trained, data_dir, capsys):
    """The README's `evaluate --checkpoint runs/course.pth`, without --model."""
    code, _ = run(capsys, "evaluate", "--checkpoint", str(trained), "--data-dir", str(data_dir),
                  "--no-baselines", "--device", "cpu")
    rows = capsys.readouterr().out if code else ""
    assert code == 0, rows


# ------------------------------------------------------------------ what denoise writes

def umask() -> int:
    return files.current_umask()


def test_denoise_keeps_the_users_permissions(tmp_path, capsys):
    src = photo(tmp_path / "in.png")
    out = tmp_path / "new.png"
    assert cli.main(["denoise", str(src), str(out), "--model", "course"]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask()
    os.chmod(src, 0o644)
    assert cli.main(["denoise", str(src), str(src), "--model", "course"]) == 0
    assert stat.S_IMODE(src.stat().st_mode) == 0o644
    os.chmod(src, 0o640)
    assert cli.main(["denoise", str(src), str(src), "--model", "course"]) == 0
    assert stat.S_IMODE(src.stat().st_mode) == 0o640


def test_data_files_get_the_users_permissions(data_dir):
    for name in ("train_data.pkl", "val_data.pkl"):
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o666 & ~umask()


def test_denoise_applies_exif_orientation(tmp_path, capsys):
    """A phone photo stored sideways with EXIF orientation 6 (rotate 90° clockwise to view)
    comes out upright, as every photo viewer shows it."""
    stored = np.zeros((16, 40, 3), np.uint8)
    stored[:, :8] = 255                                     # a white band at the stored left
    img = Image.fromarray(stored)
    exif = img.getexif()
    exif[0x0112] = 6
    src = tmp_path / "phone.jpg"
    img.save(src, exif=exif, quality=100)
    out = tmp_path / "upright.png"
    assert cli.main(["denoise", str(src), str(out), "--model", "course"]) == 0
    with Image.open(out) as result:
        assert result.size == (16, 40)                      # width 16, height 40: rotated
        upright = np.asarray(result, dtype=np.float64)
    assert upright[:8].mean() > upright[-8:].mean() + 100   # the band is now at the top


def test_a_full_disk_during_training_keeps_the_last_checkpoint(trained, data_dir, tmp_path,
                                                               capsys, monkeypatch):
    ckpt = tmp_path / "run.pth"
    ckpt.write_bytes(trained.read_bytes())

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    line = one_error(capsys, "train", "--data-dir", str(data_dir), "--out", str(ckpt),
                     "--resume", "--epochs", "2", "--no-progress")
    assert f"could not write {ckpt}: the disk is full" in line
    assert load_checkpoint(ckpt)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pth"]


def test_ctrl_c_while_writing_leaves_no_file_behind(tmp_path, capsys, monkeypatch):
    src = photo(tmp_path / "in.png")

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)
    assert cli.main(["denoise", str(src), str(tmp_path / "out.png"), "--model", "course"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_export_writes_the_history_beside_the_weights(trained, data_dir, tmp_path, capsys):
    import json

    ckpt, weights = tmp_path / "run.pth", tmp_path / "w" / "course_denoiser.pth"
    ckpt.write_bytes(trained.read_bytes())
    assert cli.main(["train", "--data-dir", str(data_dir), "--out", str(ckpt), "--resume",
                     "--epochs", "2", "--no-progress", "--export", str(weights)]) == 0
    record = json.loads((tmp_path / "w" / "course_denoiser.history.json").read_text())
    assert record["spec"] == {"name": "course", "kwargs": {"channels": 8}}
    assert len(record["history"]["val_psnr"]) == 2
    assert record["epoch_exported"] == record["history"]["best_epoch"]
    assert set(torch.load(weights, weights_only=True)) == set(load_checkpoint(ckpt)["model"])


# ------------------------------------------------------------------ found by a new user's probe

def test_denoise_with_a_checkpoint_uses_it_and_refuses_a_second_model(trained, tmp_path,
                                                                      capsys, monkeypatch):
    from scratchnet.course import Model

    src = photo(tmp_path / "in.png")
    used = []
    original = Model.from_checkpoint.__func__

    def spy(cls, path, **kwargs):
        used.append(path)
        return original(cls, path, **kwargs)

    monkeypatch.setattr(Model, "from_checkpoint", classmethod(spy))
    assert cli.main(["denoise", str(src), str(tmp_path / "o.png"), "--checkpoint",
                     str(trained)]) == 0
    assert used == [trained]
    line = one_error(capsys, "denoise", str(src), str(tmp_path / "o.png"), "--checkpoint",
                     str(trained), "--model", "unet")
    assert "give one" in line


def test_train_prints_each_epoch_as_it_ends_without_a_bar(data_dir, tmp_path, capsys):
    assert cli.main(["train", "--channels", "4", "--data-dir", str(data_dir), "--out",
                     str(tmp_path / "c.pth"), "--epochs", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.count("epoch   1") == 1 and out.count("epoch   2") == 1 and "best:" in out


@pytest.mark.parametrize("argv, says", [
    (["--model", "unet"], "--model unet: "),
    (["--channels", "16"], "--channels 16: "),
    (["--optimizer", "sgd"], "--optimizer sgd: "),
])
def test_resume_names_the_flag_that_contradicts_the_checkpoint(trained, data_dir, tmp_path,
                                                               capsys, argv, says):
    ckpt = tmp_path / "run.pth"
    ckpt.write_bytes(trained.read_bytes())
    line = one_error(capsys, "train", "--data-dir", str(data_dir), "--out", str(ckpt),
                     "--resume", "--epochs", "2", *argv)
    assert says in line and "resume" in line


def test_momentum_without_sgd_and_a_folder_as_out_are_named(data_dir, tmp_path, capsys):
    line = one_error(capsys, "train", "--data-dir", str(data_dir), "--out",
                     str(tmp_path / "c.pth"), "--momentum", "0.5")
    assert "--momentum applies to --optimizer sgd" in line
    line = one_error(capsys, "train", "--data-dir", str(data_dir), "--out", str(tmp_path))
    assert f"--out {tmp_path} is a folder" in line


def test_a_symlinked_output_keeps_its_link(tmp_path):
    target = tmp_path / "real.pth"
    files.atomic_save({"x": torch.ones(1)}, target)
    link = tmp_path / "link.pth"
    link.symlink_to(target)
    files.atomic_save({"x": torch.zeros(1)}, link)
    assert link.is_symlink()
    assert torch.equal(torch.load(target, weights_only=True)["x"], torch.zeros(1))
