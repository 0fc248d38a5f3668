"""`Adam`, step for step as torch.optim.Adam (L2 weight decay, no amsgrad)."""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from ..impl import check_impl
from .optimizer import Optimizer


class Adam(Optimizer):
    """g = g + wd·p; m = β₁m + (1 − β₁)g; v = β₂v + (1 − β₂)g²;
    p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε).

    `impl = "fast"` (default) updates all parameters of a group at once with torch._foreach_*
    ops; "reference" runs `update` on one parameter after the other. Both compute the same.
    """

    def __init__(self, params: Iterable[Tensor] | Iterable[dict], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0) -> None:
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"Adam: invalid lr={lr}, betas={betas}, eps={eps} or "
                             f"weight_decay={weight_decay}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps,
                                  "weight_decay": weight_decay})
        self.impl = "fast"

    def step(self) -> None:
        check_impl(self.impl)
        ### BEGIN FAST PATH
        if self.impl == "fast":
            for group in self.param_groups:
                params = [p for p in group["params"] if p.grad is not None]
                if params:
                    self.update_group(params, [self.state_of(p) for p in params], group)
            return
        ### END FAST PATH
        super().step()

    ### BEGIN FAST PATH
    def update_group(self, params: list[Tensor], states: list[dict[str, Any]],
                     group: dict[str, Any]) -> None:
        """`update` for a list of parameters: each line is one op on all of them."""
        beta1, beta2 = group["betas"]
        grads = [p.grad for p in params]
        if group["weight_decay"] != 0:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        for p, state in zip(params, states):
            advance(p, state)
        m, v = [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states]
        torch._foreach_lerp_(m, grads, 1 - beta1)
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - beta2)
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, [math.sqrt(1 - beta2 ** s["step"]) for s in states])
        torch._foreach_add_(denom, group["eps"])
        torch._foreach_addcdiv_(params, m, denom,
                                [-group["lr"] / (1 - beta1 ** s["step"]) for s in states])
    ### END FAST PATH

    def update(self, p: Tensor, grad: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        """Change p in place from grad (p's shape). `advance(p, state)` counts the step in
        state["step"] and creates state["exp_avg"] (m) and state["exp_avg_sq"] (v) at the first;
        `group` holds lr, betas, eps and weight_decay."""
        ### BEGIN SOLUTION
        beta1, beta2 = group["betas"]
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * p
        advance(p, state)
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.lerp_(grad, 1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step_size = group["lr"] / (1 - beta1 ** t)
        denom = (v.sqrt() / math.sqrt(1 - beta2 ** t)).add_(group["eps"])
        p.addcdiv_(m, denom, value=-step_size)
        ### END SOLUTION


def advance(p: Tensor, state: dict[str, Any]) -> None:
    """Count one more step, creating the moment estimates (zeros like p) at the first."""
    if not state:
        state["step"] = 0
        state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
    state["step"] += 1
