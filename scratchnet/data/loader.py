"""`PairLoader`: mini-batches of image pairs as float32 in [0, 1], converted batch by batch."""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from ..validation import check_image_pair
from .dihedral import random_dihedral
from .seeding import derive_generator


class PairLoader:
    """Iterate over (x, y) batches of two aligned image sets.

    a, b: uint8 or float tensors (N, C, H, W) with values in 0..255, same shape; each batch is
    x, y: float32 (B, C, H, W) in [0, 1] on `device`. Only the batch is converted, never the set.
    shuffle: a fresh order every epoch, reproducible from (seed, epoch); `epoch` counts the
    passes started so far and may be set to resume. augment: one random flip/90° rotation per
    pair, the same for x and y.
    """

    def __init__(self, a: Tensor, b: Tensor, batch_size: int = 64, shuffle: bool = True,
                 drop_last: bool = False, device: str | torch.device = "cpu",
                 augment: bool = False, seed: int = 0) -> None:
        check_image_pair(a, b, "PairLoader", channels=None, allow_empty=True)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"PairLoader: batch_size must be a positive integer, got {batch_size!r}")
        self.a, self.b = a, b
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.device, self.augment, self.seed = torch.device(device), augment, seed
        self.epoch = 0

    def __len__(self) -> int:
        n = self.a.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _to_unit(self, t: Tensor) -> Tensor:
        return t.to(self.device).to(torch.float32).div(255)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        generator = derive_generator(self.seed, self.epoch)
        self.epoch += 1
        n = self.a.shape[0]
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size].to(self.a.device)
            x, y = self.a[idx], self.b[idx]
            if self.augment:
                x, y = random_dihedral(torch.cat((x, y), dim=1), generator).chunk(2, dim=1)
            yield self._to_unit(x), self._to_unit(y)
