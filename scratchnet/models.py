"""The denoisers: the course's small encoder–decoder and a U-Net, both made of scratchnet modules.

Both map noisy images x: (N, 3, H, W) in [0, 1] to denoised images of the same shape; H and W
must be multiples of the model's `multiple` (4 for the course model, 2^depth for the U-Net: 8 by
default; `pad_to_multiple` pads other sizes).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.nn.functional as F
from torch import Tensor

from .activations import LeakyReLU, ReLU, Sigmoid
from .containers import Concat, Identity, Sequential
from .conv import Conv2d
from .module import Module
from .upsampling import Upsampling
from .validation import check_images


class Denoiser(Sequential):
    """A Sequential image-to-image model that checks its input: (N, 3, H, W), H and W multiples of
    `multiple`. `spec` = {"name": …, "kwargs": {…}}: build_model(name, **kwargs) rebuilds it."""

    def __init__(self, *modules: Module, multiple: int, spec: dict[str, Any]) -> None:
        super().__init__(*modules)
        self.multiple = multiple
        self.spec = spec

    def forward(self, x: Tensor) -> Tensor:
        check_images(x, f"{self.spec['name']} denoiser", uint8=False, multiple=self.multiple,
                     allow_empty=True)
        return super().forward(x)


def course_denoiser(channels: int = 48) -> Denoiser:
    """The course's network: two stride-2 convolutions down, two upsampling convolutions up.

    (N, 3, H, W) → (N, c, H/2, W/2) → (N, c, H/4, W/4) → (N, c, H/2, W/2) → (N, 3, H, W),
    then a sigmoid.
    """
    return Denoiser(
        Conv2d(3, channels, 2, stride=2), ReLU(),
        Conv2d(channels, channels, 2, stride=2), ReLU(),
        Upsampling(channels, channels, 3, padding=1), ReLU(),
        Upsampling(channels, 3, 3, padding=1), Sigmoid(),
        multiple=4, spec={"name": "course", "kwargs": {"channels": channels}},
    )


def _unet_level(c_in: int, widths: list[int], slope: float) -> Sequential:
    """(N, c_in, H, W) → (N, widths[0], H, W). A 3×3 convolution; then, at the bottom level, a
    second one, and at the others a skip connection concatenated with the path through the
    coarser levels, merged by a 1×1 convolution."""
    c = widths[0]
    level = Sequential(Conv2d(c_in, c, 3, padding=1), LeakyReLU(slope))
    if len(widths) == 1:
        level.append(Conv2d(c, c, 3, padding=1))
    else:
        coarse = Sequential(
            Conv2d(c, widths[1], 2, stride=2), LeakyReLU(slope),       # (N, c', H/2, W/2)
            _unet_level(widths[1], widths[1:], slope),
            Upsampling(widths[1], c, 3, padding=1), LeakyReLU(slope),  # (N, c, H, W)
        )
        level.append(Concat(Identity(), coarse))                       # (N, 2c, H, W)
        level.append(Conv2d(2 * c, c, 1))
    level.append(LeakyReLU(slope))
    return level


def unet_denoiser(channels: int = 32, depth: int = 3, growth: int = 16,
                  slope: float = 0.1) -> Denoiser:
    """A U-Net on half-resolution features, with a sigmoid output.

    A 2×2 stride-2 convolution packs each 2×2 block of pixels into `channels` features (no
    information need be lost: 12 values in, ≥ 12 out); U-Net levels follow at H/2, H/4, …,
    H/2^depth, level i with `channels + i·growth` feature maps: stride-2 convolutions go down,
    `Upsampling` (nearest ×2, then 3×3 convolution) comes back up, and each level concatenates
    its skip connection with the upsampled coarse path (`Concat(Identity(), …)`). A last
    Upsampling unpacks the features into the full-resolution image. H and W: multiples of 2^depth.
    """
    if depth < 1:
        raise ValueError(f"unet_denoiser: depth must be ≥ 1, got {depth}")
    widths = [channels + i * growth for i in range(depth)]
    return Denoiser(
        Conv2d(3, channels, 2, stride=2), LeakyReLU(slope),        # (N, c, H/2, W/2)
        _unet_level(channels, widths, slope),                      # (N, c, H/2, W/2)
        Upsampling(channels, 3, 3, padding=1), Sigmoid(),          # (N, 3, H, W)
        multiple=2 ** depth,
        spec={"name": "unet", "kwargs": {"channels": channels, "depth": depth, "growth": growth,
                                         "slope": slope}},
    )


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """x: (N, C, H, W) → (N, C, H', W'), H' and W' the next multiples of `multiple`, padded at
    the bottom and right by reflection (by repeating the edge where the image is too small to
    reflect); x itself when nothing is missing. Crop the result with [..., :H, :W]."""
    h, w = x.shape[-2:]
    pad = (0, -w % multiple, 0, -h % multiple)
    if not any(pad):
        return x
    return F.pad(x, pad, mode="reflect" if pad[1] < w and pad[3] < h else "replicate")


MODELS: dict[str, Callable[..., Denoiser]] = {"course": course_denoiser, "unet": unet_denoiser}


def build_model(name: str, **kwargs: Any) -> Denoiser:
    """`MODELS[name](**kwargs)`, with an error listing the known names."""
    if name not in MODELS:
        raise ValueError(f"build_model: unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name](**kwargs)
