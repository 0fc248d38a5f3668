"""Notebook 07: SGD (T07.1) and Adam (T07.2), through step()."""
from __future__ import annotations

from torch import Tensor

import scratchnet as sn

OPTIMIZERS = {"SGD": sn.SGD, "Adam": sn.Adam}


def optimizer_steps(optimizer: str, kwargs: dict, impl: str | None, params: list[Tensor],
                    grads: list[list[Tensor]]) -> list[dict]:
    """sn.SGD or sn.Adam (`optimizer`) with **kwargs on copies of params (impl set unless None);
    one step() per entry of grads, each parameter's p.grad set to a copy of its gradient first →
    per step, every parameter's value before and after it ("before", "after") and its .grad
    after it ("grad", None where there is none)."""
    ours = [p.clone() for p in params]
    opt = OPTIMIZERS[optimizer](ours, **kwargs)
    if impl is not None:
        opt.impl = impl
    steps = []
    for step_grads in grads:
        for p, g in zip(ours, step_grads):
            p.grad = g.clone()
        before = [p.clone() for p in ours]
        opt.step()
        steps.append({"before": before, "after": [p.clone() for p in ours],
                      "grad": [None if p.grad is None else p.grad.clone() for p in ours]})
    return steps
