"""`SGD` with momentum, dampening, Nesterov and weight decay, step for step as torch.optim.SGD."""
from __future__ import annotations

from typing import Any

from torch import Tensor

from .optimizer import Optimizer, Params, _scalar


class SGD(Optimizer):
    """d = g + wd·p; b = μ·b + (1 − τ)·d (b = d at the first step); d = d + μ·b (Nesterov) or b;
    p ← p − lr·d. With maximize, g is the negated gradient.

    torch.optim.SGD's signature; lr and weight_decay may be 1-element tensors. foreach, fused and
    differentiable are accepted for compatibility and change nothing (there is no autograd to
    differentiate through, and one update rule).
    """

    def __init__(self, params: Params, lr: float | Tensor = 1e-3, momentum: float = 0,
                 dampening: float = 0, weight_decay: float | Tensor = 0, nesterov: bool = False,
                 *, maximize: bool = False, foreach: bool | None = None,
                 differentiable: bool = False, fused: bool | None = None) -> None:
        lr, weight_decay = _scalar(lr, "SGD: lr"), _scalar(weight_decay, "SGD: weight_decay")
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: invalid lr={lr}, momentum={momentum} or "
                             f"weight_decay={weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov,
                                  "maximize": maximize, "foreach": foreach,
                                  "differentiable": differentiable, "fused": fused})

    def update(self, p: Tensor, grad: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        """Change p in place from grad (p's shape); `state["momentum_buffer"]` persists between
        steps; `group` holds lr, momentum, dampening, weight_decay and nesterov."""
        ### BEGIN SOLUTION
        d = grad if group["weight_decay"] == 0 else grad + group["weight_decay"] * p
        momentum = group["momentum"]
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = d.clone()
            else:
                buf.mul_(momentum).add_(d, alpha=1 - group["dampening"])
            d = d + momentum * buf if group["nesterov"] else buf
        p.add_(d, alpha=-group["lr"])
        ### END SOLUTION
