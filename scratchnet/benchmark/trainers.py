"""The two train steps being compared, on the same model with the same weights: scratchnet's
explicit forward/backward, and torch.nn + autograd as a torch user writes it."""
from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from ..grad_mode import no_grad
from ..interop import to_torch
from ..loss import MSELoss
from ..models import Denoiser, build_model
from ..optim import Adam
from .config import Config


class Trainer(Protocol):
    def step(self, x: Tensor, target: Tensor) -> None: ...

    def predict(self, x: Tensor) -> Tensor: ...


class ScratchnetTrainer:
    """scratchnet: explicit forward, `crit.backward()`, `model.backward(...)`, `Adam.step()`."""

    def __init__(self, model: Denoiser) -> None:
        self.model = model
        model.needs_input_grad = False        # as torch's images, which do not require grad
        self.criterion = MSELoss()
        self.optimizer = Adam(model.parameters(), lr=1e-3)

    def step(self, x: Tensor, target: Tensor) -> None:
        self.optimizer.zero_grad()
        self.criterion(self.model(x), target)
        self.model.backward(self.criterion.backward())
        self.optimizer.step()

    def predict(self, x: Tensor) -> Tensor:
        with no_grad():
            return self.model(x)


class TorchTrainer:
    """torch.nn + autograd: `F.mse_loss(...).backward()`, `torch.optim.Adam`."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(self, x: Tensor, target: Tensor) -> None:
        with torch.enable_grad():
            self.optimizer.zero_grad()
            F.mse_loss(self.model(x), target).backward()
            self.optimizer.step()

    def predict(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            return self.model(x)


def build_model_for(name: str, config: Config) -> Denoiser:
    """Model `name` on `config.device`, its weights drawn with seed 0."""
    torch.manual_seed(0)
    return build_model(name, **config.model_kwargs()).to(config.device)


def build_pair(name: str, config: Config) -> tuple[ScratchnetTrainer, TorchTrainer]:
    """Model `name` in scratchnet and its torch.nn twin, with identical weights."""
    model = build_model_for(name, config)
    return ScratchnetTrainer(model), TorchTrainer(to_torch(model))


def images(batch: int, size: int, device: str) -> tuple[Tensor, Tensor]:
    """A (batch, 3, size, size) input and target, the same for a given batch size."""
    generator = torch.Generator().manual_seed(batch)
    x, t = torch.rand(2, batch, 3, size, size, generator=generator)
    return x.to(device), t.to(device)
