"""`Optimizer`: parameter groups, per-parameter state and torch.optim's state_dict format."""
from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

Params = Iterable[Tensor] | Iterable[dict[str, Any]] | Iterable[tuple[str, Tensor]]


class Optimizer:
    """Base class: holds `param_groups` (dicts with 'params' and hyper-parameters) and `state`.

    The parameters are the module's own tensors, updated in place, so `Module.load_state_dict`
    and `Module.to` (which also update in place) never leave the optimizer holding stale tensors.
    State tensors follow their parameter's device and dtype at every step. `params` is what
    torch.optim takes: tensors, (name, tensor) pairs (e.g. `module.named_parameters()`), or
    dicts of them with per-group hyper-parameters; a group with `maximize` climbs instead.
    """

    def __init__(self, params: Params, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {torch.typename(params)} (wrap it in a "
                            "list: [tensor])")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Tensor, dict[str, Any]] = {}
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group {'params': …, hyper-parameter: value, …}; missing hyper-parameters take
        the optimizer's defaults. A parameter may belong to one group only."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: param_group must be a dict, got "
                            f"{type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, set):
            raise TypeError(f"{name}: parameters must be in an ordered collection (a list), "
                            "not a set, whose order changes between runs")
        params = [params] if isinstance(params, Tensor) else list(params)
        named = [isinstance(p, tuple) for p in params]
        group = {**self.defaults, **param_group}
        if any(named):
            if not all(named):
                raise ValueError(f"{name}: all parameters must be given with names or all "
                                 "without; some names are missing")
            group["param_names"] = [n for n, _ in params]
            params = [p for _, p in params]
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name} expects tensors, got {type(p).__name__}")
        if len({id(p) for p in params}) != len(params):
            warnings.warn(f"{name}: a parameter group holds the same parameter twice: it will be "
                          "updated twice per step", stacklevel=3)
        for other in self.param_groups:
            if ("param_names" in other) != ("param_names" in group):
                raise ValueError(f"{name}: all parameter groups must be with names or all "
                                 "without")
            if {id(p) for p in other["params"]} & {id(p) for p in params}:
                raise ValueError(f"{name}: some parameters appear in more than one parameter "
                                 "group")
        group["lr"] = _scalar(group["lr"], f"{name}: lr")
        group["params"] = params
        self.param_groups.append(group)

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
                grad = -p.grad if group.get("maximize") else p.grad
                self.update(p, grad, self.state_of(p), group)

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
        """Load a state_dict of this optimizer, or of the torch.optim optimizer of the same name
        (its tensor step counts become integers), onto the live parameters."""
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
            self.state[p] = {k: _loaded(k, v, p) for k, v in s.items()}

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def _loaded(key: str, value: Any, p: Tensor) -> Any:
    """A saved state value as this optimizer keeps it: tensors copied onto p's device and dtype
    (never shared with the optimizer that saved them), a step count as an int."""
    if key == "step" and isinstance(value, Tensor):
        return int(value.item())
    if isinstance(value, Tensor) and value.dim() > 0:
        return value.to(device=p.device, dtype=p.dtype, copy=True)
    return value


def _scalar(value: float | Tensor, what: str) -> float:
    """A hyper-parameter given as a number or a 1-element tensor, as a float."""
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(f"{what} as a tensor must have 1 element, got shape "
                             f"{tuple(value.shape)}")
        return float(value.item())
    return value
