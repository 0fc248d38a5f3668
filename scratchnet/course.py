"""`Model`: the course's interface to the denoiser (EE-559 Mini-project 2).

    model = Model()                              # course_denoiser(48); Model("unet") for the U-Net
    model.load_pretrained_model()                # the weights shipped in scratchnet/weights/
    model.train(noisy_1, noisy_2, num_epochs=1)  # uint8 or float (N, 3, H, W) in 0..255
    denoised = model.predict(noisy)              # float (N, 3, H, W) in [0, 255]
"""
from __future__ import annotations

from importlib import resources
from typing import Any

import torch
from torch import Tensor

from .grad_mode import no_grad
from .models import build_model, pad_to_multiple
from .optim import Adam
from .train import History, fit, resolve_device
from .validation import shape_str

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

    def load_pretrained_model(self) -> None:
        """Copy the shipped weights into the live parameters (the optimizer keeps them; its
        running moments restart)."""
        name = self.net.spec["name"]
        try:
            self.net.load_state_dict(pretrained_state_dict(name))
        except RuntimeError as e:
            raise RuntimeError(f"Model.load_pretrained_model: the shipped {name!r} weights fit "
                               f"build_model({name!r}) with default arguments, not "
                               f"{self.net.spec['kwargs']}: {e}") from None
        self.optimizer.state.clear()

    def train(self, train_input: Tensor, train_target: Tensor, num_epochs: int = 1) -> History:
        """Noise2Noise training: train_input, train_target are two noisy versions of the same
        images, uint8 or float (N, 3, H, W) in 0..255. Continues from the current weights."""
        self._check(train_input, "Model.train: train_input")
        self._check(train_target, "Model.train: train_target")
        if train_input.shape != train_target.shape:
            raise ValueError(f"Model.train: train_input {shape_str(train_input.shape)} and "
                             f"train_target {shape_str(train_target.shape)} differ in shape")
        history = fit(self.net, (train_input, train_target), None, epochs=num_epochs,
                      batch_size=self.batch_size, optimizer=self.optimizer, device=self.device,
                      seed=self.epochs_trained, progress=self.progress)
        self.epochs_trained += num_epochs
        return history

    def predict(self, test_input: Tensor) -> Tensor:
        """test_input: uint8 or float (N, 3, H, W) in 0..255, H and W multiples of 4 →
        denoised float32 (N, 3, H, W) in [0, 255], on test_input's device; computed in
        no_grad(), a bounded number of pixels at a time. (For a network that needs larger
        multiples, the images are padded by reflection and the result cropped back.)"""
        self._check(test_input, "Model.predict: test_input")
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

    def _check(self, x: Any, where: str) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"{where}: expected a torch.Tensor, got {type(x).__name__}")
        if x.dtype != torch.uint8 and not x.is_floating_point():
            raise TypeError(f"{where}: expected uint8 or float values in 0..255, got {x.dtype}")
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] % 4 or x.shape[3] % 4 \
                or 0 in x.shape[2:]:
            raise ValueError(f"{where}: expected images of shape (N, 3, H, W) with H and W "
                             f"multiples of 4, got {shape_str(x.shape)}")
