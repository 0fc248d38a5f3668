"""fit: learning, validation, checkpoints (atomic, resumable), determinism, divergence."""
import math
import os
from pathlib import Path

import pytest
import torch

import scratchnet as sn
from scratchnet.device import resolve_device
from scratchnet.files import atomic_save
from scratchnet.models import build_model
from scratchnet.train import History, TrainingDiverged, evaluate_psnr, fit, load_checkpoint


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
    with pytest.raises(ValueError, match="val_pairs: inputs: expected uint8 or floating-point images, got torch.int64"):
        fit(model, train, (val[0].long(), val[1].long()), progress=False)
    with pytest.raises(ValueError, match="resume=True needs the checkpoint path"):
        fit(model, train, resume=True, progress=False)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(Path("/nonexistent/ckpt.pth"))


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(ValueError, match="unknown device 'cdua'"):
        resolve_device("cdua")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_an_unavailable_cuda_device_says_what_to_use():
    with pytest.raises(ValueError, match="'cuda' is not available.*use cpu"):
        resolve_device("cuda")


class NaNOnStep(sn.SGD):
    """SGD whose step number `bad` (1-based) leaves the first weight NaN."""

    def __init__(self, params, bad: int) -> None:
        super().__init__(params, lr=0.01)
        self.steps, self.bad = 0, bad

    def step(self) -> None:
        super().step()
        self.steps += 1
        if self.steps == self.bad:
            self.param_groups[0]["params"][0].fill_(math.nan)


def test_nan_weights_after_an_epochs_last_step_are_never_saved(data, tmp_path):
    """The loss of every batch is finite, but the last step of epoch 2 makes the weights NaN:
    the error says the checkpoint keeps epoch 1, and it does."""
    train, val = data
    model = small_model()
    ckpt = tmp_path / "run.pth"
    with pytest.raises(TrainingDiverged, match=r"parameter 0.weight became NaN/inf at epoch 2, "
                                               r"batch 2; the checkpoint .*run.pth keeps epoch 1"):
        fit(model, train, val, epochs=3, batch_size=32, checkpoint=ckpt, device="cpu",
            progress=False, max_train=64, optimizer=NaNOnStep(model.parameters(), bad=4))
    saved = load_checkpoint(ckpt)
    assert saved["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in saved["model"].values())


def test_a_saturated_network_is_reported(data):
    """Adam at lr 1e3 saturates the sigmoid: the loss stays finite but the output is worse
    than the noisy input, which fit says."""
    train, val = data
    model = small_model()
    with pytest.warns(RuntimeWarning, match=r"best validation PSNR, .* dB, is below the noisy "
                                            r"input's .* dB"):
        fit(model, train, val, epochs=1, batch_size=16, device="cpu", progress=False,
            max_train=64, optimizer=sn.Adam(model.parameters(), lr=1e3))


def test_resume_with_a_new_learning_rate_applies_it(data, tmp_path):
    train, _ = data
    ckpt = tmp_path / "run.pth"
    model = small_model()
    fit(model, train, epochs=1, checkpoint=ckpt, device="cpu", progress=False, max_train=32)
    kept = sn.Adam(model.parameters(), lr=0.5)
    fit(model, train, epochs=2, checkpoint=ckpt, resume=True, device="cpu", progress=False,
        max_train=32, optimizer=kept)
    assert kept.param_groups[0]["lr"] == 1e-3
    changed = sn.Adam(model.parameters())
    fit(model, train, epochs=3, checkpoint=ckpt, resume=True, device="cpu", progress=False,
        max_train=32, optimizer=changed, lr=1e-4)
    assert changed.param_groups[0]["lr"] == 1e-4
    assert load_checkpoint(ckpt)["optimizer"]["param_groups"][0]["lr"] == 1e-4


@pytest.mark.parametrize("max_train", [0, -5])
def test_max_train_must_be_positive(data, max_train):
    with pytest.raises(ValueError, match=f"max_train must be a positive number of pairs, got "
                                         f"{max_train}"):
        fit(small_model(), data[0], epochs=1, device="cpu", progress=False, max_train=max_train)


def test_an_optimizer_of_another_model_is_refused(data):
    with pytest.raises(ValueError, match="holds none of the model's parameters"):
        fit(small_model(), data[0], epochs=1, device="cpu", progress=False, max_train=8,
            optimizer=sn.Adam(sn.Linear(2, 2).parameters()))
