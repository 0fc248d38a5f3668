"""Move models between scratchnet and torch.nn: same structure, same state_dict keys, same weights.

`to_torch(model)` builds the equivalent torch.nn model; `from_torch(torch_model)` the reverse.
Supported: every scratchnet layer and container; `Upsampling`, `Residual` and `Concat`, which
torch.nn lacks, map to the small torch modules defined here.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from . import activations, containers, conv, conv_transpose, flatten, linear, loss, pooling
from . import upsampling
from .module import Module


class TorchUpsampling(nn.Module):
    """torch twin of scratchnet.Upsampling: F.interpolate(nearest) then F.conv2d; keys weight/bias."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int],
                 scale_factor: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
                 dilation: tuple[int, int], bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(out_channels, in_channels, *kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale_factor, self.stride = scale_factor, stride
        self.padding, self.dilation = padding, dilation

    def forward(self, x: Tensor) -> Tensor:
        up = F.interpolate(x, scale_factor=self.scale_factor, mode="nearest")
        return F.conv2d(up, self.weight, self.bias, self.stride, self.padding, self.dilation)


class TorchResidual(nn.Module):
    """torch twin of scratchnet.Residual: x + module(x)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        return x + self.module(x)


class TorchConcat(nn.Module):
    """torch twin of scratchnet.Concat: branches on the same input, concatenated along dim."""

    def __init__(self, *branches: nn.Module, dim: int = 1) -> None:
        super().__init__()
        for i, branch in enumerate(branches):
            self.add_module(str(i), branch)
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([branch(x) for branch in self.children()], self.dim)


def _conv_args(m) -> dict:
    return {"stride": m.stride, "padding": m.padding, "dilation": m.dilation,
            "bias": m.bias is not None}


_TO_TORCH: dict[type, Callable[[Module], nn.Module]] = {
    conv.Conv2d: lambda m: nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size,
                                     groups=m.groups, **_conv_args(m)),
    conv_transpose.ConvTranspose2d: lambda m: nn.ConvTranspose2d(
        m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.output_padding,
        m.groups, m.bias is not None, m.dilation),
    upsampling.Upsampling: lambda m: TorchUpsampling(m.in_channels, m.out_channels, m.kernel_size,
                                                     m.scale_factor, **_conv_args(m)),
    upsampling.NearestUpsampling: lambda m: nn.Upsample(scale_factor=m.scale_factor,
                                                        mode="nearest"),
    linear.Linear: lambda m: nn.Linear(m.in_features, m.out_features, m.bias is not None),
    activations.ReLU: lambda m: nn.ReLU(),
    activations.LeakyReLU: lambda m: nn.LeakyReLU(m.negative_slope),
    activations.Sigmoid: lambda m: nn.Sigmoid(),
    activations.Tanh: lambda m: nn.Tanh(),
    flatten.Flatten: lambda m: nn.Flatten(m.start_dim, m.end_dim),
    pooling.MaxPool2d: lambda m: nn.MaxPool2d(m.kernel_size, m.stride, m.padding),
    loss.MSELoss: lambda m: nn.MSELoss(reduction=m.reduction),
    containers.Identity: lambda m: nn.Identity(),
    containers.Sequential: lambda m: nn.Sequential(*(to_torch(c) for c in m)),
    containers.Residual: lambda m: TorchResidual(to_torch(m.module)),
    containers.Concat: lambda m: TorchConcat(*(to_torch(c) for c in m.children()), dim=m.dim),
}


def _upsample_from_torch(t: nn.Upsample) -> Module:
    if t.mode != "nearest" or t.scale_factor is None:
        raise TypeError(f"from_torch supports nn.Upsample(mode='nearest', scale_factor=...), got {t}")
    sf = t.scale_factor
    return upsampling.NearestUpsampling(tuple(int(s) for s in sf) if isinstance(sf, tuple)
                                        else int(sf))


def _from_torch_pool(t: nn.MaxPool2d) -> Module:
    if t.dilation not in (1, (1, 1)) or t.ceil_mode or t.return_indices:
        raise TypeError(f"from_torch supports MaxPool2d without dilation, ceil_mode and "
                        f"return_indices, got {t}")
    return pooling.MaxPool2d(t.kernel_size, t.stride, t.padding)


def _from_torch_conv(t: nn.Conv2d) -> Module:
    if t.padding_mode != "zeros" or isinstance(t.padding, str):
        raise TypeError(f"from_torch supports numeric zero padding only, got {t}")
    return conv.Conv2d(t.in_channels, t.out_channels, t.kernel_size, t.stride, t.padding,
                       t.dilation, t.groups, t.bias is not None)


_FROM_TORCH: dict[type, Callable[[nn.Module], Module]] = {
    nn.Conv2d: _from_torch_conv,
    nn.ConvTranspose2d: lambda t: conv_transpose.ConvTranspose2d(
        t.in_channels, t.out_channels, t.kernel_size, t.stride, t.padding, t.output_padding,
        t.groups, t.bias is not None, t.dilation),
    TorchUpsampling: lambda t: upsampling.Upsampling(
        t.weight.shape[1], t.weight.shape[0], tuple(t.weight.shape[2:]), t.scale_factor,
        t.stride, t.padding, t.dilation, t.bias is not None),
    nn.Upsample: _upsample_from_torch,
    nn.Linear: lambda t: linear.Linear(t.in_features, t.out_features, t.bias is not None),
    nn.ReLU: lambda t: activations.ReLU(),
    nn.LeakyReLU: lambda t: activations.LeakyReLU(t.negative_slope),
    nn.Sigmoid: lambda t: activations.Sigmoid(),
    nn.Tanh: lambda t: activations.Tanh(),
    nn.Flatten: lambda t: flatten.Flatten(t.start_dim, t.end_dim),
    nn.MaxPool2d: _from_torch_pool,
    nn.MSELoss: lambda t: loss.MSELoss(t.reduction),
    nn.Identity: lambda t: containers.Identity(),
    nn.Sequential: lambda t: containers.Sequential(*(from_torch(c) for c in t)),
    TorchResidual: lambda t: containers.Residual(from_torch(t.module)),
    TorchConcat: lambda t: containers.Concat(*(from_torch(c) for c in t.children()), dim=t.dim),
}


def _lookup(table: dict, obj: object, direction: str):
    for cls in type(obj).__mro__:
        if cls in table:
            return table[cls]
    raise TypeError(f"{direction}: no counterpart for {type(obj).__name__}; supported: "
                    + ", ".join(sorted(c.__name__ for c in table)))


def to_torch(model: Module) -> nn.Module:
    """The torch.nn model equivalent to `model`, with copies of its weights, device and dtype."""
    torch_model = _lookup(_TO_TORCH, model, "to_torch")(model)
    params = dict(model.named_parameters())
    if params:
        first = next(iter(params.values()))
        torch_model.to(device=first.device, dtype=first.dtype)
        with torch.no_grad():
            torch_model.load_state_dict({k: v.detach().clone() for k, v in params.items()})
    return torch_model


def from_torch(torch_model: nn.Module) -> Module:
    """The scratchnet model equivalent to `torch_model`, with copies of its weights."""
    model = _lookup(_FROM_TORCH, torch_model, "from_torch")(torch_model)
    state = torch_model.state_dict()
    if state:
        first = next(iter(state.values()))
        model.to(device=first.device, dtype=first.dtype)
        model.load_state_dict({k: v.detach() for k, v in state.items()})
    return model
