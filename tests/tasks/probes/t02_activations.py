"""Notebook 02: ReLU (T02.1), Sigmoid (T02.2), Tanh (T02.3) and MSELoss (T02.4)."""
from __future__ import annotations

from torch import Tensor

import scratchnet as sn


def activation(name: str, x: Tensor, g: Tensor) -> dict:
    """sn.<name>() ("ReLU", "Sigmoid", "Tanh") → y = layer(x) and dx = layer.backward(g)."""
    layer = getattr(sn, name)()
    y = layer(x)
    return {"y": y, "dx": layer.backward(g)}


def derivative(name: str, x: Tensor, y: Tensor) -> Tensor:
    """sn.<name>().derivative(x, y)."""
    return getattr(sn, name)().derivative(x, y)


def relu_inplace(x: Tensor) -> dict:
    """sn.ReLU()(x), then y = sn.ReLU(inplace=True)(x) → x after the first, y, and x after the
    second."""
    sn.ReLU()(x)
    x_after_relu = x.clone()
    y = sn.ReLU(inplace=True)(x)
    return {"x_after_relu": x_after_relu, "y": y, "x_after_inplace": x}


def mse_loss(reduction: str, prediction: Tensor, target: Tensor) -> Tensor:
    """sn.MSELoss(reduction)(prediction, target)."""
    return sn.MSELoss(reduction)(prediction, target)


def mse_gradient(reduction: str, prediction: Tensor, target: Tensor,
                 upstream: Tensor | None = None) -> Tensor:
    """After crit = sn.MSELoss(reduction) and crit(prediction, target): crit.backward(upstream),
    or crit.backward() without `upstream`."""
    crit = sn.MSELoss(reduction)
    crit(prediction, target)
    return crit.backward() if upstream is None else crit.backward(upstream)
