"""`synthesize_pairs`: noisy training pairs and a noisy/clean validation set from clean images."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor

from .colour import random_colours
from .crops import random_crops
from .dihedral import random_dihedral
from .noise import add_noise
from .seeding import derive_generator

ImageLoader = Callable[[], Tensor]
Source = tuple[ImageLoader, tuple[int, int]]
CROP_SIZE = 32
Pairs = tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch single-threaded inside: building a data set is a long series of memory-bound
    element-wise operations that two threads barely speed up, while on a machine whose cores
    are busy every multi-threaded operation waits for a descheduled thread (50,000 pairs on
    2 busy cores: 30–40 s with 2 threads, 5 s with 1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def sample_crops(sources: Sequence[Source], n: int, generator: torch.Generator,
                 size: int = CROP_SIZE) -> Tensor:
    """sources: (loader, (H, W)) per image → uint8 (n, 3, size, size).

    Each crop picks a source image with probability ∝ sqrt(H·W) (a large image gives more
    crops than a small one, but does not swamp it), then a random scale and position, then one
    of the 8 flips/rotations. Images are loaded one at a time, so memory holds one image.
    """
    out = torch.empty((n, 3, size, size), dtype=torch.uint8)
    if n == 0:
        return out
    weights = torch.tensor([float(h * w) ** 0.5 for _, (h, w) in sources], dtype=torch.float64)
    owner = torch.multinomial(weights, n, replacement=True, generator=generator)
    for i, (load, _) in enumerate(sources):
        sel = (owner == i).nonzero().squeeze(1)
        if len(sel):
            out[sel] = random_crops(load(), len(sel), generator, size)
    return random_dihedral(out, generator)


def synthesize_pairs(train: Sequence[Source], val: Sequence[Source], n_train: int,
                     n_val: int, seed: int, noise: str, noise_kw: dict, where: str,
                     size: int = CROP_SIZE, colour_augment: bool = True) -> Pairs:
    """→ ((noisy_1, noisy_2), (noisy_val, clean_val)), uint8 (n, 3, size, size) each.

    Training crops get random colours (`random_colours`, unless colour_augment is False), then
    two independent noise draws; validation crops, from the `val` images only and in their own
    colours, get one. Training and validation use separate random streams, so the validation set
    does not depend on n_train.
    """
    for name, n in (("n_train", n_train), ("n_val", n_val)):
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"{where}: {name} must be an integer >= 0, got {n!r}")
    g_train, g_val = derive_generator(seed, 0), derive_generator(seed, 1)
    with _one_thread():
        clean = sample_crops(train, n_train, g_train, size)
        if colour_augment:
            clean = random_colours(clean, g_train)
        noisy_1 = add_noise(clean, noise, generator=g_train, **noise_kw)
        noisy_2 = add_noise(clean, noise, generator=g_train, **noise_kw)
        clean_val = sample_crops(val, n_val, g_val, size)
        noisy_val = add_noise(clean_val, noise, generator=g_val, **noise_kw)
    return (noisy_1, noisy_2), (noisy_val, clean_val)
