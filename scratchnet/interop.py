"""Move models between scratchnet and torch.nn: same structure, same state_dict keys, same weights.

`to_torch(model)` builds the equivalent torch.nn model; `from_torch(torch_model)` the reverse.
Supported: every scratchnet layer and container; `Upsampling`, `Residual` and `Concat`, which
torch.nn lacks, map to the small torch modules defined here. `from_torch` reproduces torch's
outputs and gradients or refuses, in one line naming the module, the argument and what is
supported: for instance Upsample modes other than 'nearest', forward hooks, parametrizations,
and subclasses with their own forward. `inplace=True` activations become out-of-place ones (the
same numbers; the input is left unchanged).
"""
from __future__ import annotations

from typing import Callable, NoReturn

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.utils import parametrize

from . import activations, containers, conv, conv_transpose, flatten, linear, loss, pooling
from . import unpooling, upsampling
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
                                     groups=m.groups, padding_mode=m.padding_mode,
                                     **_conv_args(m)),
    conv_transpose.ConvTranspose2d: lambda m: nn.ConvTranspose2d(
        m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.output_padding,
        m.groups, m.bias is not None, m.dilation, m.padding_mode),
    upsampling.Upsampling: lambda m: TorchUpsampling(m.in_channels, m.out_channels, m.kernel_size,
                                                     m.scale_factor, **_conv_args(m)),
    upsampling.NearestUpsampling: lambda m: _upsample_to_torch(m),
    linear.Linear: lambda m: nn.Linear(m.in_features, m.out_features, m.bias is not None),
    activations.ReLU: lambda m: nn.ReLU(),
    activations.LeakyReLU: lambda m: nn.LeakyReLU(m.negative_slope),
    activations.Sigmoid: lambda m: nn.Sigmoid(),
    activations.Tanh: lambda m: nn.Tanh(),
    flatten.Flatten: lambda m: nn.Flatten(m.start_dim, m.end_dim),
    pooling.MaxPool2d: lambda m: nn.MaxPool2d(m.kernel_size, m.stride, m.padding, m.dilation,
                                              m.return_indices, m.ceil_mode),
    unpooling.MaxUnpool2d: lambda m: nn.MaxUnpool2d(m.kernel_size, m.stride, m.padding),
    loss.MSELoss: lambda m: nn.MSELoss(reduction=m.reduction),
    containers.Identity: lambda m: nn.Identity(),
    containers.Sequential: lambda m: nn.Sequential(*(to_torch(c) for c in m)),
    containers.Residual: lambda m: TorchResidual(to_torch(m.module)),
    containers.Concat: lambda m: TorchConcat(*(to_torch(c) for c in m.children()), dim=m.dim),
}


def _refuse(t: nn.Module, argument: str, supported: str) -> NoReturn:
    raise TypeError(f"from_torch: {type(t).__name__}({t.extra_repr()}): {argument} is not "
                    f"supported; {supported}")


def _upsample_to_torch(m: upsampling.NearestUpsampling) -> nn.Module:
    t = nn.UpsamplingNearest2d(size=m.size, scale_factor=m.scale_factor)
    t.recompute_scale_factor = m.recompute_scale_factor
    return t


def _upsample_from_torch(t: nn.Upsample) -> Module:
    """nn.Upsample or nn.UpsamplingNearest2d in mode 'nearest', with a size or any scale factor
    (and recompute_scale_factor) → NearestUpsampling, which indexes as torch does; other modes,
    and what torch's own forward refuses, are refused."""
    if t.mode != "nearest":
        _refuse(t, f"mode={t.mode!r}", "scratchnet.NearestUpsampling is mode='nearest' (torch's "
                "UpsamplingNearest2d), which copies other pixels: use mode='nearest' or keep "
                "this layer in torch")
    if t.align_corners is not None:
        _refuse(t, f"align_corners={t.align_corners}", "torch's mode='nearest' refuses it too: "
                "leave align_corners=None")
    if (t.size is None) == (t.scale_factor is None):
        _refuse(t, f"size={t.size} with scale_factor={t.scale_factor}", "give exactly one of "
                "them (torch's forward refuses this too)")
    what, value = ("size", t.size) if t.size is not None else ("scale_factor", t.scale_factor)
    if isinstance(value, (tuple, list)) and len(value) not in (1, 2):
        _refuse(t, f"{what}={value}", "scratchnet.NearestUpsampling resizes (N, C, H, W) and "
                "(N, C, L) inputs: give one value or one per spatial dimension")
    if t.recompute_scale_factor and t.size is not None:
        _refuse(t, f"recompute_scale_factor=True with size={t.size}", "torch's forward refuses "
                "it too: leave recompute_scale_factor=None")
    try:
        up = upsampling.NearestUpsampling(size=t.size, scale_factor=t.scale_factor)
    except (TypeError, ValueError):
        _refuse(t, f"{what}={value}", "sizes must be whole numbers ≥ 1 and scale factors "
                "finite and > 0")
    up.recompute_scale_factor = t.recompute_scale_factor
    return up


_FROM_TORCH: dict[type, Callable[[nn.Module], Module]] = {
    nn.Conv2d: lambda t: conv.Conv2d(
        t.in_channels, t.out_channels, t.kernel_size, t.stride, t.padding, t.dilation, t.groups,
        t.bias is not None, t.padding_mode),
    nn.ConvTranspose2d: lambda t: conv_transpose.ConvTranspose2d(
        t.in_channels, t.out_channels, t.kernel_size, t.stride, t.padding, t.output_padding,
        t.groups, t.bias is not None, t.dilation, t.padding_mode),
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
    nn.MaxPool2d: lambda t: pooling.MaxPool2d(t.kernel_size, t.stride, t.padding, t.dilation,
                                              t.return_indices, t.ceil_mode),
    nn.MaxUnpool2d: lambda t: unpooling.MaxUnpool2d(t.kernel_size, t.stride, t.padding),
    nn.MSELoss: lambda t: loss.MSELoss(reduction=t.reduction),
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


def _check_convertible(t: nn.Module) -> None:
    """Refuse what converting t by its class would silently lose: its own forward (a subclass),
    parameters not yet materialised (lazy modules), parametrizations, hooks, and a freeze of
    only some of its parameters (scratchnet freezes whole modules)."""
    mro = type(t).__mro__
    converted = next(cls for cls in mro if cls in _FROM_TORCH)
    if any("forward" in vars(cls) for cls in mro[:mro.index(converted)]):
        raise TypeError(f"from_torch: {type(t).__name__} overrides {converted.__name__}.forward, "
                        "which from_torch cannot reproduce; supported: the torch.nn classes and "
                        "subclasses that keep their forward")
    if isinstance(t, LazyModuleMixin) and t.has_uninitialized_params():
        _refuse(t, "a lazy module with uninitialized parameters", "run one forward first")
    if parametrize.is_parametrized(t):
        _refuse(t, f"parametrized {', '.join(t.parametrizations)}", "convert after "
                "torch.nn.utils.parametrize.remove_parametrizations(module, name)")
    hooks = [name for name in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
                               "_backward_pre_hooks") if getattr(t, name, None)]
    if hooks:
        _refuse(t, f"a module with hooks ({', '.join(h.strip('_') for h in hooks)})",
                "scratchnet runs no hooks: remove them (handle.remove()) before converting")
    if len({p.requires_grad for p in t.parameters(recurse=False)}) == 2:
        _refuse(t, "requires_grad=False on some of its parameters", "scratchnet freezes whole "
                "modules: freeze all of them or none (module.requires_grad_(False))")


def from_torch(torch_model: nn.Module) -> Module:
    """The scratchnet model equivalent to `torch_model`, with copies of its weights; a TypeError
    naming the module and the argument for anything it cannot reproduce exactly."""
    convert = _lookup(_FROM_TORCH, torch_model, "from_torch")
    _check_convertible(torch_model)
    model = convert(torch_model)
    state = torch_model.state_dict()
    if state:
        first = next(iter(state.values()))
        model.to(device=first.device, dtype=first.dtype)
        model.load_state_dict({k: v.detach() for k, v in state.items()})
    if any(not p.requires_grad for p in torch_model.parameters(recurse=False)):
        model.requires_grad_(False)
    return model
