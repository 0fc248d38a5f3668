"""`fit`: the training loop around a scratchnet model — batches, MSE, optimizer steps, validation
PSNR, a progress bar, checkpoints that can be resumed, and a clean stop when the loss diverges.

Images enter as uint8 or float tensors (N, 3, H, W) in 0..255, as in the course; the model sees
float32 in [0, 1]. Each epoch's shuffle and augmentation are drawn from (seed, epoch) by
`PairLoader`, so a run resumed from its checkpoint after epoch k repeats exactly what an
uninterrupted run would have done (on the CPU).
"""
from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .data.loader import PairLoader
from .device import resolve_device
from .files import atomic_save, load_tensors
from .grad_mode import no_grad
from .loss import MSELoss
from .metrics import psnr
from .module import Module
from .optim import Adam, Optimizer
from .progress import progress_bar
from .validation import check_image_pair

Pairs = tuple[Tensor, Tensor]


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite. `epoch` (1-based) and `batch` say where; the
    checkpoint file, if any, still holds the last epoch that finished with a finite loss."""

    def __init__(self, message: str, epoch: int, batch: int, history: History) -> None:
        super().__init__(message)
        self.epoch, self.batch, self.history = epoch, batch, history


@dataclass
class History:
    """Per-epoch results: `train_loss[i]` (mean MSE of epoch i + 1), `val_psnr[i]` (dB; empty
    without validation data), `seconds[i]` (wall time, validation included); `best_psnr` and its
    1-based `best_epoch` (0: none yet; without validation data the best epoch is the last one
    and best_psnr is NaN)."""

    train_loss: list[float] = field(default_factory=list)
    val_psnr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_psnr: float = -math.inf
    best_epoch: int = 0

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def __str__(self) -> str:
        rows = [f"epoch {i + 1:3d}  loss {loss:.5f}"
                + (f"  val PSNR {self.val_psnr[i]:.2f} dB" if i < len(self.val_psnr) else "")
                + f"  {self.seconds[i]:.1f} s" for i, loss in enumerate(self.train_loss)]
        if self.val_psnr:
            rows.append(f"best: {self.best_psnr:.2f} dB at epoch {self.best_epoch}")
        return "\n".join(rows)


def check_pairs(pairs: Any, where: str) -> Pairs:
    """Raise ValueError unless `pairs` is (a, b): two tensors of one shape (N, 3, H, W), N > 0,
    uint8 or floating point (values in 0..255). → (a, b)."""
    if not isinstance(pairs, (tuple, list)) or len(pairs) != 2:
        raise ValueError(f"{where}: expected a pair (inputs, targets) of tensors, got "
                         f"{type(pairs).__name__}")
    return check_image_pair(*pairs, where, names=("inputs", "targets"))


def evaluate_psnr(model: Module, noisy: Tensor, clean: Tensor, batch_size: int = 256,
                  device: torch.device | str | None = None) -> float:
    """Mean PSNR (dB, images scaled to [0, 1]) of model(noisy) against clean, both (N, 3, H, W)
    uint8 or float in 0..255; outputs are clipped to [0, 1]; computed in `no_grad()`,
    `batch_size` images at a time."""
    check_pairs((noisy, clean), "evaluate_psnr")
    return _evaluate_psnr(model, noisy, clean, batch_size, device)


def _evaluate_psnr(model: Module, noisy: Tensor, clean: Tensor, batch_size: int = 256,
                   device: torch.device | str | None = None) -> float:
    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total = 0.0
    with no_grad():
        for x, y in PairLoader(noisy, clean, batch_size, shuffle=False, device=device):
            total += float(psnr(model(x).clamp(0, 1), y)) * len(x)
    model.train(was_training)
    return total / len(noisy)


def _cpu_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint written by `fit` (tensors and plain data only: weights_only=True), on the CPU.

    Keys: model (weights after the last epoch), best_model (weights of the best epoch), optimizer,
    optimizer_class, epoch (epochs done), history (a dict of History's fields), spec ({"name",
    "kwargs"} for `build_model`, or None).
    """
    what = "a checkpoint written by scratchnet's fit (python -m scratchnet train)"
    ckpt = load_tensors(path, what)
    keys = {"model", "best_model", "optimizer", "optimizer_class", "epoch", "history", "spec"}
    if not isinstance(ckpt, dict) or not keys <= set(ckpt):
        hint = (" (it looks like bare weights, a state_dict such as scratchnet/weights/*.pth: "
                "load them with model.load_state_dict)"
                if isinstance(ckpt, dict) and ckpt and all(isinstance(v, Tensor)
                                                           for v in ckpt.values()) else "")
        raise ValueError(f"{path} is not {what}{hint}")
    return ckpt


def fit(model: Module, train_pairs: Pairs, val_pairs: Pairs | None = None, epochs: int = 10,
        batch_size: int = 32, optimizer: Optimizer | None = None, device: str | torch.device =
        "auto", checkpoint: str | os.PathLike | None = None, resume: bool = False, seed: int = 0,
        augment: bool = False, progress: bool = True, max_train: int | None = None,
        callback: Callable[[History], None] | None = None, val_batch_size: int = 256,
        lr: float | None = None, log_dir: str | os.PathLike | None = None) -> History:
    """Train `model` to map train_pairs[0] to train_pairs[1] with MSE (Noise2Noise: two noisy
    copies); after each epoch measure the PSNR on val_pairs = (noisy, clean).

    train_pairs, val_pairs: (a, b), each (N, 3, H, W), uint8 or float in 0..255.
    optimizer: default Adam(model.parameters(), lr=1e-3). device: 'auto' picks CUDA when available;
    the model is moved there in place. max_train: use only the first max_train (≥ 1) pairs.
    checkpoint: after every epoch, atomically write the model, optimizer and history there (see
    `load_checkpoint`), with the weights of the best validation epoch (the last epoch when there
    is no validation data); without resume an existing file is replaced. resume: start from that
    checkpoint (when it exists), at the epoch after the one it holds, and train until `epochs`
    epochs are done in all; the optimizer's state, learning rate included, is the checkpoint's,
    unless `lr` is given: then every parameter group continues with lr.
    callback(history) runs after each epoch (e.g. to draw live loss/PSNR curves in a notebook).
    log_dir: write TensorBoard event files there (see `scratchnet.tracking`): the loss of each
    batch, per epoch the loss, validation PSNR and learning rate, a few validation images, and
    the run's hyperparameters; needs TensorBoard (pip install -e ".[tracking]"), else raises
    TrackingUnavailable (an ImportError) before training.
    Raises TrainingDiverged as soon as the loss, or after an epoch any parameter, is NaN/inf:
    the checkpoint keeps the last good epoch. Warns (RuntimeWarning) when the best validation
    PSNR is below the noisy input's: the network makes images worse.
    """
    check_pairs(train_pairs, "fit: train_pairs")
    if val_pairs is not None:
        check_pairs(val_pairs, "fit: val_pairs")
    return _fit(model, train_pairs, val_pairs, epochs=epochs, batch_size=batch_size,
                optimizer=optimizer, device=device, checkpoint=checkpoint, resume=resume,
                seed=seed, augment=augment, progress=progress, max_train=max_train,
                callback=callback, val_batch_size=val_batch_size, lr=lr, log_dir=log_dir)


def _fit(model: Module, train_pairs: Pairs, val_pairs: Pairs | None, *, epochs: int,
         batch_size: int, optimizer: Optimizer | None, device: str | torch.device,
         checkpoint: str | os.PathLike | None, resume: bool, seed: int, augment: bool,
         progress: bool, max_train: int | None, callback: Callable[[History], None] | None,
         val_batch_size: int, lr: float | None,
         log_dir: str | os.PathLike | None = None) -> History:
    """`fit` on pairs already checked."""
    a, b = train_pairs
    if max_train is not None:
        if not isinstance(max_train, int) or max_train < 1:
            raise ValueError(f"fit: max_train must be a positive number of pairs, got "
                             f"{max_train!r}")
        a, b = a[:max_train], b[:max_train]
    if batch_size < 1 or epochs < 0:
        raise ValueError(f"fit: batch_size ({batch_size}) must be ≥ 1 and epochs ({epochs}) ≥ 0")
    if lr is not None and not lr > 0:
        raise ValueError(f"fit: lr must be positive, got {lr}")
    if resume and checkpoint is None:
        raise ValueError("fit: resume=True needs the checkpoint path to resume from")
    device = resolve_device(device)
    model.to(device)
    if optimizer is None:
        optimizer = Adam(model.parameters(), lr=1e-3 if lr is None else lr)
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    if not any(id(p) in held for p in model.parameters()):
        raise ValueError(f"fit: the {type(optimizer).__name__} holds none of the model's "
                         "parameters (was it built for another model?); build it from "
                         "model.parameters()")
    spec = getattr(model, "spec", None)
    history, start = History(), 0
    best_state = _cpu_state(model.state_dict())
    if resume and Path(checkpoint).exists():
        ckpt = load_checkpoint(checkpoint)
        if ckpt.get("spec") != spec:
            raise ValueError(f"fit: the checkpoint {checkpoint} is for the model "
                             f"{ckpt.get('spec')}, not {spec}")
        if ckpt["optimizer_class"] != type(optimizer).__name__:
            raise ValueError(f"fit: the checkpoint {checkpoint} was trained with "
                             f"{ckpt['optimizer_class']}, not {type(optimizer).__name__}")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        history = History(**ckpt["history"])
        best_state = ckpt["best_model"]
        start = ckpt["epoch"]
    if lr is not None:
        for group in optimizer.param_groups:
            group["lr"] = lr
    noisy_psnr = None if val_pairs is None else float(psnr(*(t.to(torch.float32) / 255
                                                             for t in val_pairs)))
    crit = MSELoss()
    loader = PairLoader(a, b, batch_size, shuffle=True, device=device, augment=augment, seed=seed)
    loader.epoch = start
    log = None
    if log_dir is not None:
        from .tracking import RunLog, run_hparams

        log = RunLog(log_dir, run_hparams(model, optimizer, len(a), batch_size, epochs, seed,
                                          augment), val_pairs, start, len(loader))
    try:
        for epoch in range(start, epochs):
            began = time.perf_counter()
            loss_sum = 0.0
            bar = progress_bar(len(loader), f"epoch {epoch + 1}/{epochs}", progress, unit="batch")
            model.train()
            for i, (x, y) in enumerate(loader):
                loss = float(crit(model(x), y))
                if not math.isfinite(loss):
                    bar.close()
                    raise _diverged(f"the training loss became {loss}", epoch, i + 1, checkpoint,
                                    history)
                optimizer.zero_grad()
                with _images_need_no_grad(model):
                    model.backward(crit.backward())
                optimizer.step()
                loss_sum += loss * len(x)
                if log is not None:
                    log.batch(epoch * len(loader) + i + 1, loss)
                bar.update()
                bar.set_postfix(loss=f"{loss:.5f}", refresh=False)
            bad = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
            if bad:
                bar.close()
                raise _diverged(f"the parameter {bad[0]} became NaN/inf", epoch, len(loader),
                                checkpoint, history)
            history.train_loss.append(loss_sum / len(a))
            summary = {"loss": f"{history.train_loss[-1]:.5f}"}
            if val_pairs is not None:
                history.val_psnr.append(_evaluate_psnr(model, *val_pairs, val_batch_size, device))
                summary["val PSNR"] = f"{history.val_psnr[-1]:.2f} dB"
            history.seconds.append(time.perf_counter() - began)
            if val_pairs is None or history.val_psnr[-1] > history.best_psnr:
                history.best_psnr = history.val_psnr[-1] if val_pairs is not None else math.nan
                history.best_epoch = epoch + 1
                best_state = _cpu_state(model.state_dict())
            bar.set_postfix(summary, refresh=False)
            bar.close()
            if checkpoint is not None:
                atomic_save({"model": _cpu_state(model.state_dict()), "best_model": best_state,
                             "optimizer": optimizer.state_dict(),
                             "optimizer_class": type(optimizer).__name__, "epoch": epoch + 1,
                             "history": asdict(history), "spec": spec}, checkpoint)
            if log is not None:
                log.epoch(epoch + 1, epochs, history.train_loss[-1],
                          history.val_psnr[-1] if val_pairs is not None else None,
                          history.best_psnr, optimizer.param_groups[0]["lr"], model)
            if callback is not None:
                callback(history)
    finally:
        if log is not None:
            log.close()
    if noisy_psnr is not None and history.val_psnr and history.best_psnr < noisy_psnr:
        warnings.warn(f"fit: the best validation PSNR, {history.best_psnr:.2f} dB, is below the "
                      f"noisy input's {noisy_psnr:.2f} dB: the network makes the images worse. "
                      "Train longer; if the loss has stopped falling, the network is saturated: "
                      "lower the learning rate", RuntimeWarning,
                      stacklevel=3)
    return history


@contextmanager
def _images_need_no_grad(model: Module) -> Iterator[None]:
    """model.needs_input_grad is False inside: its first layer skips ∂L/∂(images), as torch
    does for inputs that do not require grad; restored on leaving."""
    needed = model.needs_input_grad
    model.needs_input_grad = False
    try:
        yield
    finally:
        model.needs_input_grad = needed


def _diverged(what: str, epoch: int, batch: int, checkpoint: str | os.PathLike | None,
              history: History) -> TrainingDiverged:
    """The error for divergence in epoch `epoch` (0-based); the last good epoch is `epoch`."""
    kept = (f"the checkpoint {checkpoint} keeps epoch {epoch}" if checkpoint and epoch
            else "no checkpoint was written")
    return TrainingDiverged(f"fit: {what} at epoch {epoch + 1}, batch {batch}; {kept}. Lower the "
                            "learning rate (or check the data for NaN/inf) and train again.",
                            epoch + 1, batch, history)
