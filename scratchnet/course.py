"""`Model`: the course's interface to the denoiser (EE-559 Mini-project 2).

    model = Model()                              # course_denoiser(48); Model("unet") for the U-Net
    model.load_pretrained_model()                # the weights shipped in scratchnet/weights/
    model.train(noisy_1, noisy_2, num_epochs=1)  # uint8 or float (N, 3, H, W) in 0..255
    denoised = model.predict(noisy)              # float (N, 3, H, W) in [0, 255], any H, W
"""
from __future__ import annotations

import os
from importlib import resources
from typing import Any

import torch
from torch import Tensor

from .device import resolve_device
from .grad_mode import no_grad
from .models import build_model, pad_to_multiple
from .optim import Adam
from .train import History, _fit, load_checkpoint
from .validation import check_image_pair, check_images

PIXELS_PER_BATCH = 1 << 20


def pretrained_state_dict(name: str) -> dict[str, Tensor]:
    """The state_dict shipped as scratchnet/weights/<name>_denoiser.pth, on the CPU."""
    ref = resources.files("scratchnet") / "weights" / f"{name}_denoiser.pth"
    if not ref.is_file():
        raise FileNotFoundError(f"no pretrained weights for the {name!r} model: {ref} is missing")
    with resources.as_file(ref) as path:
        return torch.load(path, map_location="cpu", weights_only=True)


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
        history = _fit(self.net, pairs, None, num_epochs, self.batch_size, self.optimizer,
                       self.device, None, False, self.epochs_trained, False, self.progress, None,
                       None, 256, None)
        self.epochs_trained += num_epochs
        return history

    def predict(self, test_input: Tensor) -> Tensor:
        """test_input: uint8 or float (N, 3, H, W) in 0..255, of any size →
        denoised float32 (N, 3, H, W) in [0, 255], on test_input's device; computed in
        no_grad(), a bounded number of pixels at a time. Images whose H or W is not a multiple
        of the network's `multiple` are padded by reflection and the result cropped back.
        NaN or inf in test_input raise a ValueError naming the images."""
        check_images(test_input, "Model.predict: test_input", allow_empty=True, finite=True)
        test_input = test_input.detach()
        n, _, h, w = test_input.shape
        per_batch = max(1, PIXELS_PER_BATCH // (h * w))
        out = torch.empty(test_input.shape, dtype=torch.float32, device=test_input.device)
        self.net.eval()
        with no_grad():
            for start in range(0, n, per_batch):
                x = test_input[start:start + per_batch].to(self.device, torch.float32) / 255
                y = self.net(pad_to_multiple(x, self.net.multiple))[:, :, :h, :w]
                out[start:start + per_batch] = (y.clamp(0, 1) * 255).to(out.device)
        self.net.train()
        return out
