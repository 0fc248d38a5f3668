"""Notebook 10: Residual (T10.1) and Concat (T10.2), around branches written here (with their own
backward) or Identity, so that only the containers are tested."""
from __future__ import annotations

import torch
from torch import Tensor

import scratchnet as sn


class ChannelScale(sn.Module):
    """y[n, c, h, w] = a[c]·x[n, c, h, w]²; a: (C,) is a parameter. Keeps the shape."""

    def __init__(self, a: Tensor) -> None:
        super().__init__()
        self.register_parameter("a", a)

    def forward(self, x: Tensor) -> Tensor:
        self.save_for_backward(x=x)
        return self.a.view(1, -1, 1, 1) * x * x

    def backward(self, g: Tensor) -> Tensor:
        x = self.saved["x"]
        self.accumulate_grad("a", (g * x * x).sum((0, 2, 3)))
        return 2 * self.a.view(1, -1, 1, 1) * x * g


class ChannelMix(sn.Module):
    """y[n, o, h, w] = Σ_c m[o, c]·x[n, c, h, w]; m: (C_out, C_in) is a parameter."""

    def __init__(self, m: Tensor) -> None:
        super().__init__()
        self.register_parameter("m", m)

    def forward(self, x: Tensor) -> Tensor:
        self.save_for_backward(x=x)
        return torch.einsum("oc,nchw->nohw", self.m, x)

    def backward(self, g: Tensor) -> Tensor:
        self.accumulate_grad("m", torch.einsum("nohw,nchw->oc", g, self.saved["x"]))
        return torch.einsum("oc,nohw->nchw", self.m, g)


class Chain(sn.Module):
    """Two modules in a row, with its own backward (not Sequential, another task's code)."""

    def __init__(self, first: sn.Module, second: sn.Module) -> None:
        super().__init__()
        self.first, self.second = first, second

    def forward(self, x: Tensor) -> Tensor:
        return self.second(self.first(x))

    def backward(self, g: Tensor) -> Tensor:
        return self.first.backward(self.second.backward(g))


def build(spec: dict) -> sn.Module:
    """A module from its description: {"kind": "scale" or "mix", "param": tensor},
    {"kind": "identity"}, {"kind": "chain" or "residual", "modules": [description, …]} or
    {"kind": "concat", "modules": [description, …], "dim": int}."""
    kind = spec["kind"]
    if kind == "scale":
        return ChannelScale(spec["param"])
    if kind == "mix":
        return ChannelMix(spec["param"])
    if kind == "identity":
        return sn.Identity()
    modules = [build(m) for m in spec["modules"]]
    if kind == "chain":
        return Chain(*modules)
    if kind == "residual":
        return sn.Residual(*modules)
    return sn.Concat(*modules, dim=spec["dim"])


def forward_backward(spec: dict, x: Tensor, g: Tensor) -> dict:
    """The described module (`build`): → y = module(x), what module.backward(g) returned and
    every parameter's (name, grad) in named_parameters() order."""
    module = build(spec)
    y = module(x)
    dx = module.backward(g)
    return {"y": y, "dx": dx, "grads": [(name, p.grad) for name, p in module.named_parameters()]}
