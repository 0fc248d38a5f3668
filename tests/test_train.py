"""fit: learning, validation, checkpoints (atomic, resumable), determinism, divergence."""
import math
import os
from pathlib import Path

import pytest
import torch

import scratchnet as sn
from scratchnet.models import build_model
from scratchnet.train import (
    History,
    TrainingDiverged,
    atomic_save,
    evaluate_psnr,
    fit,
    load_checkpoint,
    resolve_device,
)


def smooth_images(n: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    """uint8 (n, 3, size, size): random low-frequency colour fields, easy to denoise."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=g)
    images = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear",
                                             align_corners=True)
    return (images * 200 + 28).round().to(torch.uint8)


def noisy(clean: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (clean.float() + sigma * torch.randn(clean.shape, generator=g)).round() \
        .clamp(0, 255).to(torch.uint8)


@pytest.fixture(scope="module")
def data():
    clean = smooth_images(256)
    train = (noisy(clean, 30, 1), noisy(clean, 30, 2))
    clean_val = smooth_images(64, seed=9)
    return train, (noisy(clean_val, 30, 3), clean_val)


def small_model(seed: int = 0):
    torch.manual_seed(seed)
    return build_model("course", channels=8)


def params(model) -> list[torch.Tensor]:
    return [p.clone() for p in model.parameters()]


def test_training_beats_the_noisy_input(data):
    train, val = data
    model = small_model()
    history = fit(model, train, val, epochs=20, batch_size=16, device="cpu", progress=False,
                  optimizer=sn.Adam(model.parameters(), lr=3e-3))
    noisy_psnr = float(sn.psnr(val[0].float() / 255, val[1].float() / 255))
    assert history.epochs == 20 and len(history.val_psnr) == 20 and len(history.seconds) == 20
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.best_psnr == max(history.val_psnr)
    assert history.val_psnr[history.best_epoch - 1] == history.best_psnr
    assert history.best_psnr > noisy_psnr + 2
    assert evaluate_psnr(model, *val) == pytest.approx(history.val_psnr[-1])
    assert "best:" in str(history)


def test_float_inputs_in_0_255_train_like_uint8(data):
    train, _ = data
    runs = []
    for pairs in (train, tuple(t.float() for t in train)):
        model = small_model()
        fit(model, pairs, epochs=1, batch_size=32, device="cpu", progress=False, max_train=128)
        runs.append(params(model))
    for p, q in zip(*runs):
        torch.testing.assert_close(p, q)


def test_seeded_runs_are_deterministic_and_seeds_matter(data):
    train, _ = data
    runs = []
    for seed in (0, 0, 1):
        model = small_model()
        fit(model, train, epochs=2, batch_size=32, device="cpu", progress=False, seed=seed,
            augment=True, max_train=128)
        runs.append(params(model))
    assert all(torch.equal(p, q) for p, q in zip(runs[0], runs[1]))
    assert not all(torch.equal(p, q) for p, q in zip(runs[0], runs[2]))


def test_resume_after_an_interrupt_equals_an_uninterrupted_run(data, tmp_path):
    train, val = data
    kwargs = {"batch_size": 32, "device": "cpu", "progress": False, "seed": 3, "augment": True,
              "max_train": 192}
    reference = small_model()
    ref_history = fit(reference, train, val, epochs=4, **kwargs)

    def interrupt_after_two(history: History) -> None:
        if history.epochs == 2:
            raise KeyboardInterrupt

    ckpt = tmp_path / "run.pth"
    with pytest.raises(KeyboardInterrupt):
        fit(small_model(), train, val, epochs=4, checkpoint=ckpt, callback=interrupt_after_two,
            **kwargs)
    assert load_checkpoint(ckpt)["epoch"] == 2
    resumed = small_model(seed=123)                   # a fresh process: other initial weights
    history = fit(resumed, train, val, epochs=4, checkpoint=ckpt, resume=True, **kwargs)
    for p, q in zip(reference.parameters(), resumed.parameters()):
        assert torch.equal(p, q)
    assert history.train_loss == ref_history.train_loss
    assert history.val_psnr == ref_history.val_psnr
    assert history.best_epoch == ref_history.best_epoch
    assert history.best_psnr == ref_history.best_psnr
    ckpt_data = load_checkpoint(ckpt)
    assert ckpt_data["epoch"] == 4 and ckpt_data["spec"] == resumed.spec
    best = small_model()
    best.load_state_dict(ckpt_data["best_model"])
    assert evaluate_psnr(best, *val) == pytest.approx(history.best_psnr)


def test_resume_refuses_another_model_or_optimizer(data, tmp_path):
    train, _ = data
    ckpt = tmp_path / "run.pth"
    fit(small_model(), train, epochs=1, checkpoint=ckpt, device="cpu", progress=False,
        max_train=32)
    with pytest.raises(ValueError, match="checkpoint .* is for the model"):
        fit(build_model("course", channels=4), train, epochs=2, checkpoint=ckpt, resume=True,
            device="cpu", progress=False, max_train=32)
    model = small_model()
    with pytest.raises(ValueError, match="trained with Adam, not SGD"):
        fit(model, train, epochs=2, checkpoint=ckpt, resume=True, device="cpu", progress=False,
            optimizer=sn.SGD(model.parameters(), lr=0.1), max_train=32)


def test_a_diverging_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(
        data, tmp_path):
    train, val = data
    model = small_model()
    ckpt = tmp_path / "run.pth"
    calls = []

    def blow_up_after_two(history: History) -> None:
        calls.append(history.epochs)
        if history.epochs == 2:
            model[0].weight.fill_(math.nan)

    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 3, batch 1; the "
                                               r"checkpoint .*run.pth keeps epoch 2") as info:
        fit(model, train, val, epochs=5, batch_size=64, checkpoint=ckpt, device="cpu",
            progress=False, callback=blow_up_after_two, max_train=128)
    assert (info.value.epoch, info.value.batch, info.value.history.epochs) == (3, 1, 2)
    assert calls == [1, 2]
    saved = load_checkpoint(ckpt)
    assert saved["epoch"] == 2
    assert all(torch.isfinite(t).all() for t in saved["model"].values())


def test_divergence_with_a_huge_learning_rate_is_caught(data):
    train, _ = data
    torch.manual_seed(0)
    model = sn.Sequential(sn.Conv2d(3, 8, 3, padding=1), sn.ReLU(), sn.Conv2d(8, 3, 3, padding=1))
    with pytest.raises(TrainingDiverged, match="no checkpoint was written.*Lower the learning"):
        fit(model, train, epochs=3, batch_size=16, device="cpu", progress=False,
            optimizer=sn.SGD(model.parameters(), lr=1e6), max_train=64)


def test_nan_in_the_data_is_caught(data):
    train, _ = data
    a = train[0][:32].float()
    a[5, 0, 3, 3] = math.nan
    with pytest.raises(TrainingDiverged, match="became nan at epoch 1, batch 1"):
        fit(small_model(), (a, train[1][:32]), epochs=1, batch_size=32, device="cpu",
            progress=False)


def test_checkpoints_are_written_atomically(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pth"
    atomic_save({"x": torch.ones(3)}, path)

    def failing_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"x": torch.zeros(3)}, path)
    assert torch.equal(torch.load(path, weights_only=True)["x"], torch.ones(3))
    assert os.listdir(tmp_path) == ["ckpt.pth"]
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_fit_checks_its_inputs(data):
    train, val = data
    model = small_model()
    with pytest.raises(ValueError, match=r"train_pairs: inputs \(256, 3, 16, 16\) and targets "
                                         r"\(255, 3, 16, 16\) differ"):
        fit(model, (train[0], train[1][1:]), progress=False)
    with pytest.raises(ValueError, match="val_pairs: expected uint8 or float images in 0..255"):
        fit(model, train, (val[0].long(), val[1].long()), progress=False)
    with pytest.raises(ValueError, match="resume=True needs the checkpoint path"):
        fit(model, train, resume=True, progress=False)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(Path("/nonexistent/ckpt.pth"))


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
