"""Input checks shared by the layers: every message names the layer and the shapes involved."""
from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

if TYPE_CHECKING:
    from .module import Module


def shape_str(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


def expect_input(module: "Module", x: Tensor, dims: int, channels: int | None = None,
                 channel_dim: int = 1) -> None:
    """Raise ValueError unless x is a tensor of rank `dims` with `channels` at `channel_dim`."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{module._short_repr()}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() != dims:
        raise ValueError(f"{module._short_repr()}: expected a {dims}-D input, got input of shape {shape_str(x.shape)}")
    if channels is not None and x.shape[channel_dim] != channels:
        raise ValueError(
            f"{module._short_repr()}: expected input with {channels} channels, got input of shape {shape_str(x.shape)}"
        )
    weight = module._parameters.get("weight")
    if weight is not None and (x.dtype != weight.dtype or x.device != weight.device):
        raise ValueError(
            f"{module._short_repr()}: input is {x.dtype} on {x.device} but the weight is {weight.dtype} on "
            f"{weight.device}; move one with .to()"
        )


def expect_grad(module: "Module", grad_output: Tensor, expected: tuple[int, ...]) -> None:
    """Raise ValueError unless grad_output has the shape of the last forward's output."""
    if not isinstance(grad_output, Tensor):
        raise TypeError(f"{module._short_repr()}: grad_output must be a torch.Tensor, "
                        f"got {type(grad_output).__name__}")
    if tuple(grad_output.shape) != tuple(expected):
        raise ValueError(
            f"{module._short_repr()}: grad_output of shape {shape_str(grad_output.shape)} does not "
            f"match the output shape {shape_str(expected)} of the last forward"
        )


def expect_spatial(module: "Module", x: Tensor, out_size: tuple[int, int]) -> None:
    """Raise ValueError if the computed output size is empty (input smaller than the kernel)."""
    if out_size[0] < 1 or out_size[1] < 1:
        raise ValueError(
            f"{module._short_repr()}: input of shape {shape_str(x.shape)} is too small: "
            f"the output would be {out_size[0]}×{out_size[1]}"
        )
