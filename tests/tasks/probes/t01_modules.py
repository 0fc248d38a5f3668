"""Notebook 01: Linear (T01.1, T01.2) and Sequential (T01.3), with modules written here."""
from __future__ import annotations

import torch
from torch import Tensor

import scratchnet as sn


def linear(weight: Tensor, bias: Tensor | None) -> sn.Linear:
    """sn.Linear with these parameters (float64)."""
    fan_out, fan_in = weight.shape
    layer = sn.Linear(fan_in, fan_out, bias=bias is not None, dtype=torch.float64)
    layer.weight.copy_(weight)
    if bias is not None:
        layer.bias.copy_(bias)
    return layer


def linear_forward(weight: Tensor, bias: Tensor | None, x: Tensor) -> dict:
    """→ y = layer(x) and x afterwards."""
    y = linear(weight, bias)(x)
    return {"y": y, "x": x}


def linear_backward(weight: Tensor, bias: Tensor | None, x: Tensor, g: Tensor,
                    passes: int = 1) -> dict:
    """`passes` forward/backward passes without zero_grad() → what the last backward returned
    and the parameters' .grad after each pass (None where there is none)."""
    layer = linear(weight, bias)
    dx, grads = None, []
    for _ in range(passes):
        layer(x)
        dx = layer.backward(g)
        grads.append({name: None if p.grad is None else p.grad.clone()
                      for name, p in (("weight", layer.weight), ("bias", layer.bias))
                      if p is not None})
    return {"dx": dx, "grads": grads}


# -- T01.3: Sequential, with modules written here (not Linear), so that only Sequential is tested
class Logged(sn.Module):
    """A module that records its forward and backward calls in a shared log."""

    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__()
        self.name, self.log = name, log

    def forward(self, x: Tensor) -> Tensor:
        self.log.append(f"{self.name}.forward")
        return self.compute(x)

    def backward(self, grad_output: Tensor) -> Tensor:
        self.log.append(f"{self.name}.backward")
        return self.grad(grad_output)


class Scale(Logged):
    """y = x·a over the last dimension; a: (features,) is a parameter."""

    def __init__(self, a: Tensor, name: str, log: list[str]) -> None:
        super().__init__(name, log)
        self.register_parameter("a", a)

    def compute(self, x: Tensor) -> Tensor:
        self.save_for_backward(x=x)
        return x * self.a

    def grad(self, g: Tensor) -> Tensor:
        x = self.saved["x"]
        self.accumulate_grad("a", (g * x).reshape(-1, x.shape[-1]).sum(0))
        return g * self.a


class MatMul(Logged):
    """y = x·M; M: (in, out) is a parameter."""

    def __init__(self, m: Tensor, name: str, log: list[str]) -> None:
        super().__init__(name, log)
        self.register_parameter("m", m)

    def compute(self, x: Tensor) -> Tensor:
        self.save_for_backward(x=x)
        return x @ self.m

    def grad(self, g: Tensor) -> Tensor:
        x = self.saved["x"]
        self.accumulate_grad("m", x.reshape(-1, x.shape[-1]).T @ g.reshape(-1, g.shape[-1]))
        return g @ self.m.T


class Square(Logged):
    """y = x², no parameters."""

    def compute(self, x: Tensor) -> Tensor:
        self.save_for_backward(x=x)
        return x * x

    def grad(self, g: Tensor) -> Tensor:
        return 2 * self.saved["x"] * g


def build(spec: dict, log: list[str]) -> sn.Module:
    """A module from its description: {"kind": "scale" or "matmul", "name": …, "param": tensor},
    {"kind": "square", "name": …} or {"kind": "sequential", "modules": [description, …]}."""
    kind = spec["kind"]
    if kind == "sequential":
        return sn.Sequential(*(build(m, log) for m in spec["modules"]))
    if kind == "square":
        return Square(spec["name"], log)
    return (Scale if kind == "scale" else MatMul)(spec["param"], spec["name"], log)


def sequential(spec: dict, x: Tensor, g: Tensor | None = None) -> dict:
    """The described Sequential (`build`): → y = net(x) and the calls it made;
    with g, also what net.backward(g) returned, the calls it made and every parameter's
    (name, grad) in named_parameters() order."""
    log: list[str] = []
    net = build(spec, log)
    out: dict = {"y": net(x), "forward_calls": list(log)}
    if g is not None:
        log.clear()
        out["dx"] = net.backward(g)
        out["backward_calls"] = list(log)
        out["grads"] = [(name, p.grad) for name, p in net.named_parameters()]
    return out
