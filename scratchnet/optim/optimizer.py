"""`Optimizer`: parameter groups, per-parameter state and torch.optim's state_dict format."""
from __future__ import annotations

import copy
from typing import Any, Iterable

from torch import Tensor


class Optimizer:
    """Base class: holds `param_groups` (dicts with 'params' and hyper-parameters) and `state`.

    The parameters are the module's own tensors, updated in place, so `Module.load_state_dict`
    and `Module.to` (which also update in place) never leave the optimizer holding stale tensors.
    State tensors follow their parameter's device and dtype at every step.
    """

    def __init__(self, params: Iterable[Tensor] | Iterable[dict], defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.param_groups: list[dict[str, Any]] = []
        for group in groups:
            params_ = list(group["params"])
            for p in params_:
                if not isinstance(p, Tensor):
                    raise TypeError(f"{type(self).__name__} expects tensors, got {type(p).__name__}")
            self.param_groups.append({**defaults, **group, "params": params_})
        self.state: dict[Tensor, dict[str, Any]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()

    def step(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                self.update(p, p.grad, self.state_of(p), group)

    def state_of(self, p: Tensor) -> dict[str, Any]:
        """p's state (created empty), its tensors moved to p's current device and dtype."""
        state = self.state.setdefault(p, {})
        for key, value in state.items():
            if isinstance(value, Tensor) and value.dim() > 0 and (
                    value.device != p.device or value.dtype != p.dtype):
                state[key] = value.to(device=p.device, dtype=p.dtype)
        return state

    def update(self, p: Tensor, grad: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        """Change p in place from its gradient; `state` persists between steps."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """torch.optim's layout: parameters are numbered in group order."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {index[id(p)]: copy.copy(s) for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(g["params"]) != len(own["params"]) for g, own in zip(groups, self.param_groups)):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the saved parameter groups "
                             "do not match this optimizer's")
        by_index = {}
        for saved, own in zip(groups, self.param_groups):
            for i, p in zip(saved["params"], own["params"]):
                by_index[i] = p
            own.update({k: v for k, v in saved.items() if k != "params"})
        self.state = {}
        for i, s in state_dict["state"].items():
            p = by_index[int(i)]
            self.state[p] = {k: v.to(device=p.device, dtype=p.dtype)
                             if isinstance(v, Tensor) and v.dim() > 0 else v for k, v in s.items()}

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)
