"""`RunLog`: a training run's TensorBoard event files, written by `fit(..., log_dir=...)`.

One folder per run (point `tensorboard --logdir` at their parent to compare runs). Tags:
`loss/train_step` (each batch's MSE; step = batches done), `loss/train`, `psnr/val`, `psnr/best`
and `lr` (one value per epoch; step = the 1-based epoch), `images/noisy_denoised_clean` (a few
validation images, one row each, every few epochs), and the hyperparameters for TensorBoard's
HParams view, with `psnr/val` and `psnr/best` (or `loss/train` without validation data) as its
metrics. TensorBoard is optional (`pip install -e ".[tracking]"`): it is imported when a RunLog is
made, never by the core.
"""
from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from .grad_mode import no_grad
from .module import Module
from .optim import Optimizer

INSTALL_HINT = 'pip install -e ".[tracking]" (or pip install tensorboard)'
IMAGE_EVERY = 5
IMAGES_SHOWN = 4
GAP = 2
HParam = bool | int | float | str


class TrackingUnavailable(ImportError, RuntimeError):
    """TensorBoard is not installed; the message says what to install."""


def summary_writer_class() -> type:
    """torch.utils.tensorboard.SummaryWriter; TrackingUnavailable when TensorBoard is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise TrackingUnavailable(f"logging a run for TensorBoard needs the tensorboard package, "
                                  f"which is not installed: {INSTALL_HINT}") from e
    return SummaryWriter


def run_hparams(model: Module, optimizer: Optimizer, train_pairs: int, batch_size: int,
                epochs: int, seed: int, augment: bool) -> dict[str, HParam]:
    """A run's settings as hyperparameters: the model (its spec's name and arguments), the
    optimizer and its learning rate, and fit's arguments."""
    spec = getattr(model, "spec", None) or {"name": type(model).__name__, "kwargs": {}}
    kwargs = {k: v if isinstance(v, (bool, int, float, str)) else str(v)
              for k, v in spec["kwargs"].items()}
    return {"model": spec["name"], **kwargs, "optimizer": type(optimizer).__name__,
            "lr": optimizer.param_groups[0]["lr"], "batch_size": batch_size, "epochs": epochs,
            "train_pairs": train_pairs, "seed": seed, "augment": augment}


class RunLog:
    """The event files of one run in `log_dir`, from its epoch `start` on (0: a fresh run, which
    hides any events an earlier run left in the folder; k: a run resumed after k epochs of
    `batches` batches each, which hides what the interrupted run wrote after epoch k).

    hparams: the run's settings (shown in the HParams view). val_pairs: (noisy, clean), each
    (N, 3, H, W) in 0..255, or None; a few of them are drawn denoised every IMAGE_EVERY epochs.
    """

    def __init__(self, log_dir: str | os.PathLike, hparams: Mapping[str, HParam],
                 val_pairs: tuple[Tensor, Tensor] | None, start: int = 0,
                 batches: int = 1) -> None:
        writer_class = summary_writer_class()
        from torch.utils.tensorboard.summary import hparams as hparams_summaries

        path = Path(log_dir)
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, f"log_dir {path} is a file: give a folder "
                                     "for the run's event files", str(path))
        self.writer = writer_class(str(path), purge_step=start * batches + 1 if start else 0)
        metrics = ("psnr/val", "psnr/best") if val_pairs is not None else ("loss/train",)
        for summary in hparams_summaries(dict(hparams), dict.fromkeys(metrics, 0.0)):
            self.writer.file_writer.add_summary(summary)
        self.shown = None
        if val_pairs is not None:
            noisy, clean = val_pairs
            pick = torch.linspace(0, len(noisy) - 1, min(IMAGES_SHOWN, len(noisy))).long()
            self.shown = (noisy[pick].float() / 255, clean[pick].float() / 255)

    def batch(self, step: int, loss: float) -> None:
        """The training loss of batch `step` (1-based, counted over all epochs)."""
        self.writer.add_scalar("loss/train_step", loss, step)

    def epoch(self, epoch: int, epochs: int, loss: float, psnr: float | None, best: float,
              lr: float, model: Module) -> None:
        """Epoch `epoch`'s (1-based, of `epochs`) mean loss, validation PSNR and best PSNR so far
        (dB; None and ignored without validation data), learning rate; the images when due."""
        self.writer.add_scalar("loss/train", loss, epoch)
        self.writer.add_scalar("lr", lr, epoch)
        if psnr is not None:
            self.writer.add_scalar("psnr/val", psnr, epoch)
            self.writer.add_scalar("psnr/best", best, epoch)
        if self.shown is not None and (epoch == 1 or epoch % IMAGE_EVERY == 0 or epoch == epochs):
            self.writer.add_image("images/noisy_denoised_clean", self._comparison(model), epoch)
        self.writer.flush()

    def _comparison(self, model: Module) -> Tensor:
        """(3, k·(H + GAP) − GAP, 3·(W + GAP) − GAP) in [0, 1]: one row per shown image, noisy,
        denoised and clean side by side, on white."""
        noisy, clean = self.shown
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        with no_grad():
            denoised = model(noisy.to(device)).clamp(0, 1).cpu()
        model.train(was_training)
        k, c, h, w = noisy.shape
        grid = torch.ones(c, k * (h + GAP) - GAP, 3 * (w + GAP) - GAP)
        for row, images in enumerate(zip(noisy, denoised, clean)):
            for col, image in enumerate(images):
                top, left = row * (h + GAP), col * (w + GAP)
                grid[:, top:top + h, left:left + w] = image
        return grid

    def close(self) -> None:
        self.writer.close()


def read_scalars(log_dir: str | os.PathLike, tag: str) -> list[tuple[int, float]]:
    """A run's values of scalar `tag` ('psnr/val', 'loss/train_step', …), as TensorBoard reads
    them from the event files in `log_dir`: [(step, value), …] in step order."""
    summary_writer_class()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    path = Path(log_dir)
    if not path.is_dir():
        raise FileNotFoundError(errno.ENOENT, f"no run folder {path}", str(path))
    events = EventAccumulator(str(path), size_guidance={"scalars": 0})
    events.Reload()
    if tag not in events.Tags()["scalars"]:
        raise KeyError(f"{path} has no scalar {tag!r}; it has "
                       f"{', '.join(sorted(events.Tags()['scalars'])) or 'none'}")
    return [(e.step, e.value) for e in sorted(events.Scalars(tag), key=lambda e: e.step)]
