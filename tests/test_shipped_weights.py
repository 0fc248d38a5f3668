"""The shipped weights reproduce the README's figures, and the shipped history is theirs."""
import re
from pathlib import Path

import pytest

from scratchnet.course import Model, pretrained_history
from scratchnet.data import build_default_dataset
from scratchnet.metrics import psnr

README = Path(__file__).resolve().parents[1] / "README.md"
ROWS = {"course": "| course network", "unet": "| U-Net"}


def readme_row(name: str) -> str:
    (row,) = [line for line in README.read_text(encoding="utf-8").splitlines()
              if line.startswith(ROWS[name])]
    return row


def readme_psnr(name: str) -> float:
    """The first number with two decimals after the row's label (bold or not)."""
    cells = [c.strip().strip("*") for c in readme_row(name).strip("|").split("|")[1:]]
    return float(next(c for c in cells if re.fullmatch(r"\d+\.\d\d", c)))


@pytest.fixture(scope="module")
def default_validation_set():
    _, (noisy, clean) = build_default_dataset(n_train=0, n_val=1000)
    return noisy, clean


@pytest.mark.parametrize("name", sorted(ROWS))
def test_shipped_weights_reproduce_the_readme(name, default_validation_set):
    noisy, clean = default_validation_set
    model = Model(name, device="cpu", progress=False)
    model.load_pretrained_model()
    measured = float(psnr(model.predict(noisy) / 255, clean.float() / 255))
    assert round(measured, 2) == readme_psnr(name), f"{name}: {measured:.4f} dB"


@pytest.mark.parametrize("name", sorted(ROWS))
def test_the_shipped_history_is_the_shipped_weights_run(name):
    history = pretrained_history(name)
    assert history.epochs == len(history.val_psnr) == len(history.seconds) >= 10
    assert history.best_psnr == max(history.val_psnr)
    assert round(history.best_psnr, 2) == readme_psnr(name)
    assert f"best epoch {history.best_epoch})" in readme_row(name)
    assert f"{history.epochs} epochs" in readme_row(name)
