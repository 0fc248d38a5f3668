"""`Model`: the course's interface to the denoiser (EE-559 Mini-project 2).

    model = Model()                              # course_denoiser(48); Model("unet") for the U-Net
    model.load_pretrained_model()                # the weights shipped in scratchnet/weights/
    model.train(noisy_1, noisy_2, num_epochs=1)  # uint8 or float (N, 3, H, W) in 0..255
    denoised = model.predict(noisy)              # float (N, 3, H, W) in [0, 255], any H, W
"""
from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .data.dihedral import dihedral, dihedral_inverse
from .device import resolve_device
from .files import atomic_save, atomic_write
from .grad_mode import no_grad
from .models import build_model, pad_to_multiple
from .optim import Adam
from .tiling import run_tiled, tile_margin
from .train import History, _fit, load_checkpoint
from .unclip import unclip
from .validation import check_image_pair, check_images

PIXELS_PER_BATCH = 1 << 20
DEFAULT_TILE = 512


def pretrained_state_dict(name: str) -> dict[str, Tensor]:
    """The state_dict shipped as scratchnet/weights/<name>_denoiser.pth, on the CPU."""
    ref = resources.files("scratchnet") / "weights" / f"{name}_denoiser.pth"
    if not ref.is_file():
        raise FileNotFoundError(f"no pretrained weights for the {name!r} model: {ref} is missing")
    with resources.as_file(ref) as path:
        return torch.load(path, map_location="cpu", weights_only=True)


def history_path(weights: str | os.PathLike) -> Path:
    """Where the training history of exported weights lives: beside them, `<stem>.history.json`."""
    weights = Path(weights)
    return weights.with_name(f"{weights.stem}.history.json")


def export_weights(checkpoint: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write a checkpoint's best weights to `path` as a bare state_dict (the format of
    scratchnet/weights/*.pth) and its History beside them as JSON (`history_path`), with the
    model's spec and the epoch exported. → the history file."""
    atomic_save(checkpoint["best_model"], path)
    record = {"spec": checkpoint["spec"], "epoch_exported": checkpoint["history"]["best_epoch"],
              "history": checkpoint["history"]}
    return atomic_write(history_path(path),
                        lambda f: f.write(json.dumps(record, indent=1) + "\n"), text=True)


def pretrained_history(name: str) -> History:
    """The History of the run that produced the shipped weights of `name` (every epoch's
    training loss, validation PSNR and time)."""
    ref = resources.files("scratchnet") / "weights" / f"{name}_denoiser.history.json"
    if not ref.is_file():
        raise FileNotFoundError(f"no training history shipped for the {name!r} model: {ref}")
    return History(**json.loads(ref.read_text(encoding="utf-8"))["history"])


class Model:
    """A denoiser with the course's four methods.

    name: "course" (default: the course's network, 48 channels) or "unet"; model_kwargs go to
    `build_model` (the pretrained weights fit the defaults only). device: 'auto' = CUDA when
    available. Training uses Adam(lr) and mini-batches of `batch_size`; `progress` shows a bar.
    """

    def __init__(self, name: str = "course", *, device: str | torch.device = "auto",
                 lr: float = 1e-3, batch_size: int = 32, progress: bool = True,
                 **model_kwargs: Any) -> None:
        self.device = resolve_device(device)
        self.net = build_model(name, **model_kwargs).to(self.device)
        self.optimizer = Adam(self.net.parameters(), lr=lr)
        self.batch_size, self.progress = batch_size, progress
        self.epochs_trained = 0
        self.source = "untrained"

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, *, device: str | torch.device = "auto",
                        **options: Any) -> Model:
        """The model a checkpoint written by `fit` (python -m scratchnet train) holds, with the
        weights of its best epoch; `options` as for Model()."""
        ckpt = load_checkpoint(path)
        spec = ckpt["spec"]
        if spec is None:
            raise ValueError(f"{path} does not say which model it holds (its spec is None): "
                             "build the model yourself and load ckpt['best_model'] into it")
        model = cls(spec["name"], device=device, **options, **spec["kwargs"])
        model.net.load_state_dict(ckpt["best_model"])
        model.epochs_trained = ckpt["epoch"]
        model.source = f"{path}, epoch {ckpt['history']['best_epoch']}"
        return model

    def load_pretrained_model(self) -> None:
        """Copy the shipped weights into the live parameters (the optimizer keeps them; its
        running moments restart)."""
        name, kwargs = self.net.spec["name"], self.net.spec["kwargs"]
        changed = {k: v for k, v in kwargs.items()
                   if v != build_model(name).spec["kwargs"].get(k)}
        if changed:
            raise ValueError(f"Model.load_pretrained_model: the shipped {name!r} weights fit "
                             f"build_model({name!r}) with default arguments, not {changed}")
        self.net.load_state_dict(pretrained_state_dict(name))
        self.optimizer.state.clear()
        self.source = "shipped weights"

    def __str__(self) -> str:
        return f"{self.net.spec['name']} ({self.source})"

    def train(self, train_input: Tensor, train_target: Tensor, num_epochs: int = 1) -> History:
        """Noise2Noise training: train_input, train_target are two noisy versions of the same
        images, uint8 or float (N, 3, H, W) in 0..255. Continues from the current weights."""
        pairs = check_image_pair(train_input, train_target, "Model.train",
                                 names=("train_input", "train_target"),
                                 multiple=self.net.multiple, finite=True)
        history = _fit(self.net, pairs, None, epochs=num_epochs, batch_size=self.batch_size,
                       optimizer=self.optimizer, device=self.device, checkpoint=None,
                       resume=False, seed=self.epochs_trained, augment=False,
                       progress=self.progress, max_train=None, callback=None,
                       val_batch_size=256, lr=None)
        self.epochs_trained += num_epochs
        return history

    def predict(self, test_input: Tensor, *, tile: int | None = DEFAULT_TILE,
                progress: bool | None = None, ensemble: bool = False,
                unclip_sigma: float | None = None) -> Tensor:
        """test_input: uint8 or float (N, 3, H, W) in 0..255, of any size →
        denoised float32 (N, 3, H, W) in [0, 255], on test_input's device; computed in
        no_grad(), a bounded number of pixels at a time. Images whose H or W is not a multiple
        of the network's `multiple` are padded by reflection and the result cropped back.
        NaN or inf in test_input raise a ValueError naming the images.

        An image taller or wider than `tile` (default 512) is denoised in tiles of at most
        tile×tile pixels, each with a margin of context as wide as the network's receptive
        field (`scratchnet.tiling`), so memory stays bounded at any size and the result equals
        the whole image's up to float rounding; tile=None (or 0) denoises each image whole. `progress`
        (default: the model's) shows a bar over the tiles.

        ensemble: average the network's outputs over the 8 flips/90° rotations of each image
        (test-time self-ensemble: 8× the time). unclip_sigma: the Gaussian noise level of the
        training targets on the 0..1 scale (e.g. 25/255; `scratchnet.unclip.pair_noise_sigma`
        measures it from noisy pairs): undo the bias that uint8 clipping put into them
        (`scratchnet.unclip`). Neither changes the weights."""
        check_images(test_input, "Model.predict: test_input", allow_empty=True, finite=True)
        if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int)
                                 or tile < 0):
            raise ValueError(f"Model.predict: tile must be a positive integer, or 0 or None "
                             f"for the whole image, got {tile!r}")
        tile = tile or None
        if not isinstance(ensemble, bool):
            raise TypeError(f"Model.predict: ensemble must be True or False, got {ensemble!r}")
        if unclip_sigma is not None and (isinstance(unclip_sigma, bool) or not isinstance(
                unclip_sigma, (int, float)) or not 0 <= unclip_sigma < 1):
            raise ValueError(f"Model.predict: unclip_sigma is the noise level on the 0..1 scale, "
                             f"in [0, 1), got {unclip_sigma!r}")
        test_input = test_input.detach()
        n, _, h, w = test_input.shape
        out = torch.empty(test_input.shape, dtype=torch.float32, device=test_input.device)
        multiple = self.net.multiple

        def unit(x: Tensor) -> Tensor:
            return x.to(self.device, torch.float32) / 255

        def denoise(x: Tensor) -> Tensor:
            if ensemble:
                y = sum(dihedral_inverse(self.net(dihedral(x, k)), k) for k in range(8)) / 8
            else:
                y = self.net(x)
            y = y.clamp(0, 1)
            return (y if unclip_sigma is None else unclip(y, unclip_sigma)) * 255

        self.net.eval()
        try:
            with no_grad():
                if tile is not None and max(h, w) > tile:
                    show = self.progress if progress is None else progress
                    for i in range(n):
                        run_tiled(lambda x: denoise(unit(x)), test_input[i:i + 1],
                                  out[i:i + 1], tile=tile,
                                  margin=tile_margin(self.net), multiple=multiple,
                                  progress=show)
                else:
                    per_batch = max(1, PIXELS_PER_BATCH // max(1, h * w))
                    for start in range(0, n, per_batch):
                        x = unit(test_input[start:start + per_batch])
                        y = denoise(pad_to_multiple(x, multiple))[:, :, :h, :w]
                        out[start:start + per_batch] = y.to(out.device)
        finally:
            self.net.train()
        return out
