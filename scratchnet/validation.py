"""Input checks: those the layers share (every message names the layer and the shapes involved),
and the one checker of image batches that every way in (files, training, `Model`, baselines,
widgets) uses."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from .grad_mode import is_grad_enabled

if TYPE_CHECKING:
    from .module import Module


def shape_str(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


def expect_input(module: "Module", x: Tensor, dims: int | None, channels: int | None = None,
                 channel_dim: int = 1) -> None:
    """Raise ValueError unless x is a tensor of rank `dims` (any when None) with `channels` at
    `channel_dim`, of the dtype and on the device of the module's weight."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{module._short_repr()}: expected a torch.Tensor, got {type(x).__name__}")
    if dims is not None and x.dim() != dims:
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


def batched(module: "Module", x: Tensor) -> Tensor:
    """x: (N, C, H, W) → x, or unbatched (C, H, W) → (1, C, H, W); a ValueError for other ranks."""
    expect_input(module, x, None)
    if x.dim() not in (3, 4):
        raise ValueError(f"{module._short_repr()}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) "
                         f"input, got input of shape {shape_str(x.shape)}")
    return x if x.dim() == 4 else x.unsqueeze(0)


LayerMethod = Callable[["Module", Tensor], Tensor]


def unbatched_forward(forward: LayerMethod) -> LayerMethod:
    """A layer's forward(x: (N, C, H, W)) that also takes unbatched x: (C, H, W), as torch's
    layers do: x gets a batch of one (`batched`), which the output loses again, and the saved
    context notes it for `unbatched_backward`."""
    @functools.wraps(forward)
    def wrapper(self: "Module", x: Tensor) -> Tensor:
        y = forward(self, batched(self, x))
        if x.dim() == 4:
            return y
        if is_grad_enabled():
            self.saved["unbatched_output"] = tuple(y.shape[1:])
        return y[0]

    return wrapper


def unbatched_backward(backward: LayerMethod) -> LayerMethod:
    """The backward of a layer whose forward is `unbatched_forward`: after an unbatched forward,
    grad_output: (C_out, H_out, W_out) gets a batch of one, which the input gradient loses. The
    note is hidden while backward runs, so that the backward of a subclass calling its parent's
    adds the batch dimension once."""
    @functools.wraps(backward)
    def wrapper(self: "Module", grad_output: Tensor) -> Tensor:
        saved = self.saved
        shape = saved.pop("unbatched_output", None)
        if shape is None:
            return backward(self, grad_output)
        try:
            expect_grad(self, grad_output, shape)
            grad_input = backward(self, grad_output.unsqueeze(0))
            return None if grad_input is None else grad_input[0]
        finally:
            saved["unbatched_output"] = shape

    return wrapper


def expect_spatial(module: "Module", x: Tensor, out_size: tuple[int, int]) -> None:
    """Raise ValueError if the computed output size is empty (input smaller than the kernel)."""
    if out_size[0] < 1 or out_size[1] < 1:
        raise ValueError(
            f"{module._short_repr()}: input of shape {shape_str(x.shape)} is too small: "
            f"the output would be {out_size[0]}×{out_size[1]}"
        )


def check_images(x: object, where: str, *, uint8: bool = True, floating: bool = True,
                 channels: int | None = 3, multiple: int = 1, allow_empty: bool = False,
                 finite: bool = False) -> Tensor:
    """The one image checker: raise unless x is a batch of images (N, C, H, W) with C =
    `channels` (any when None), of dtype uint8 (if allowed) or floating point (if allowed), H and
    W positive multiples of `multiple`, N > 0 unless `allow_empty`, and, when `finite`, no NaN
    or inf. TypeError for a non-tensor, ValueError otherwise; messages start
    with `where`. → x."""
    kinds = " or ".join(k for k, ok in (("uint8", uint8), ("floating-point", floating)) if ok)
    c = "C" if channels is None else str(channels)
    if not isinstance(x, Tensor):
        raise TypeError(f"{where}: expected a torch.Tensor of {kinds} images, got "
                        f"{type(x).__name__}")
    if not ((uint8 and x.dtype == torch.uint8) or (floating and x.is_floating_point())):
        raise ValueError(f"{where}: expected {kinds} images, got {x.dtype}")
    if x.dim() != 4 or (channels is not None and x.shape[1] != channels):
        raise ValueError(f"{where}: expected images of shape (N, {c}, H, W), got "
                         f"{shape_str(x.shape)}")
    h, w = x.shape[2:]
    if h == 0 or w == 0 or h % multiple or w % multiple:
        rule = "positive" if multiple == 1 else f"positive multiples of {multiple}"
        raise ValueError(f"{where}: height and width must be {rule}, got images of shape "
                         f"{shape_str(x.shape)}")
    if len(x) == 0 and not allow_empty:
        raise ValueError(f"{where}: no images (shape {shape_str(x.shape)})")
    if finite and x.is_floating_point():
        bad = ~torch.isfinite(x.reshape(len(x), -1)).all(1)
        if bad.any():
            first = int(bad.nonzero()[0])
            raise ValueError(f"{where}: {int(bad.sum())} of {len(x)} images contain NaN or inf "
                             f"(the first is image {first}); replace them (torch.nan_to_num) "
                             "first")
    return x


def check_image_pair(a: object, b: object, where: str, names: tuple[str, str] = ("a", "b"),
                     **rules: Any) -> tuple[Tensor, Tensor]:
    """`check_images` on a and b (named `names` in messages), which must also have one shape."""
    check_images(a, f"{where}: {names[0]}", **rules)
    check_images(b, f"{where}: {names[1]}", **rules)
    if a.shape != b.shape:
        raise ValueError(f"{where}: {names[0]} {shape_str(a.shape)} and {names[1]} "
                         f"{shape_str(b.shape)} differ in shape")
    return a, b
