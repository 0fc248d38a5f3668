"""Notebook 05: ConvTranspose2d.forward (T05.1) and ConvTranspose2d.backward (T05.2)."""
from __future__ import annotations

import torch
from torch import Tensor

import scratchnet as sn


def conv_transpose(args: tuple, kwargs: dict, impl: str | None, weight: Tensor,
                   bias: Tensor | None, x: Tensor, g: Tensor | None = None) -> dict:
    """sn.ConvTranspose2d(*args, **kwargs) (float64, impl set unless None) with these parameters:
    → y = layer(x); with g, also what layer.backward(g) returned and the parameters' .grad after
    it and after a second forward/backward pass without zero_grad() (None where there is
    none)."""
    layer = sn.ConvTranspose2d(*args, **kwargs, dtype=torch.float64)
    if impl is not None:
        layer.impl = impl
    layer.weight.copy_(weight)
    if bias is not None:
        layer.bias.copy_(bias)
    out: dict = {"y": layer(x)}
    if g is not None:
        out["dx"] = layer.backward(g)
        out["grads"] = [grads(layer)]
        layer(x)
        layer.backward(g)
        out["grads"].append(grads(layer))
    return out


def grads(layer: sn.ConvTranspose2d) -> dict:
    """{name: a copy of p.grad, or None} for the layer's weight and bias (if it has one)."""
    return {name: None if p.grad is None else p.grad.clone()
            for name, p in (("weight", layer.weight), ("bias", layer.bias)) if p is not None}
