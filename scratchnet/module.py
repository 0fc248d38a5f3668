"""`Module`: the base class of every layer, with torch.nn.Module's bookkeeping and an explicit backward."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterator, Mapping

import functools
import inspect
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from .grad_mode import is_grad_enabled
from .validation import shape_str


class GradientShapeError(ValueError):
    """A backward produced a parameter gradient whose shape is not the parameter's.

    `module` and `parameter` say which tensor, so `gradcheck` can point at its row.
    """

    def __init__(self, module: Module, parameter: str, grad_shape: tuple[int, ...],
                 param_shape: tuple[int, ...]) -> None:
        super().__init__(f"{module._short_repr()}: gradient of shape {shape_str(grad_shape)} for "
                         f"parameter '{parameter}' of shape {shape_str(param_shape)}")
        self.module, self.parameter, self.param_shape = module, parameter, tuple(param_shape)


class IncompatibleKeys(NamedTuple):
    """What `load_state_dict` returns, as torch's `_IncompatibleKeys`."""

    missing_keys: list[str]
    unexpected_keys: list[str]

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return (f"IncompatibleKeys(missing_keys={self.missing_keys}, "
                f"unexpected_keys={self.unexpected_keys})")


_CONSUMED = object()


def _check_entry(module: Module, kind: str, name: object, value: object) -> None:
    """What torch checks before registering a parameter or buffer: a non-empty name without a
    dot, a Tensor or None, and no attribute, sub-module or entry of the other kind of that
    name (re-registering one of the same kind replaces it)."""
    if not isinstance(name, str):
        raise TypeError(f"{type(module).__name__}: {kind} name must be a string, got "
                        f"{type(name).__name__}")
    if not name or "." in name:
        raise KeyError(f"{type(module).__name__}: {kind} name {name!r} must be non-empty and "
                       "must not contain '.' (dots separate sub-modules in state_dict keys)")
    if value is not None and not isinstance(value, Tensor):
        raise TypeError(f"{kind} {name!r} must be a Tensor or None, got {type(value).__name__}")
    other = module._buffers if kind == "parameter" else module._parameters
    if name in module.__dict__ or name in module._modules or name in other:
        raise KeyError(f"{type(module).__name__}: attribute {name!r} already exists")


def _consuming(backward: Callable[..., Any]) -> Callable[..., Any]:
    """backward, which then marks the forward's saved tensors as used: a second backward without
    a new forward is an error, as in torch ("backward through the graph a second time"). When
    the module's `needs_input_grad` is False, the outermost call returns None; a call from a
    subclass's backward (`super().backward(g)`) still gets the gradient."""
    @functools.wraps(backward)
    def wrapper(self: Module, *args: Any, **kwargs: Any) -> Any:
        outermost = not self.__dict__.get("_in_backward", False)
        object.__setattr__(self, "_in_backward", True)
        try:
            result = backward(self, *args, **kwargs)
        finally:
            if outermost:
                object.__setattr__(self, "_in_backward", False)
        if not outermost:
            return result
        if self._ctx is not None:
            object.__setattr__(self, "_ctx", _CONSUMED)
        return result if self.needs_input_grad else None

    return wrapper


class Module:
    """A layer with a hand-written `forward` and `backward`.

    Parameters are plain tensors registered with `register_parameter` and read as attributes
    (`conv.weight`); their gradients live in `p.grad` and are accumulated by `backward` until
    `zero_grad()`. Each backward uses what its forward saved, once: a second backward needs a
    new forward (as torch's autograd graph). Sub-modules assigned as attributes are registered
    automatically; buffers (`register_buffer`) are tensors that are state but not parameters.
    """

    training: bool

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "backward" in cls.__dict__:
            cls.backward = _consuming(cls.__dict__["backward"])  # type: ignore[method-assign]

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_frozen", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_ctx", None)

    # -- the two methods a layer implements ---------------------------------------------------
    def forward(self, *inputs: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, grad_output: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, *inputs: Tensor, **kwargs: Any) -> Tensor:
        """forward(*inputs); `input=` names the first input, as in torch (`layer(input=x)`)."""
        if "input" in kwargs and "input" not in inspect.signature(self.forward).parameters:
            inputs = (kwargs.pop("input"), *inputs)
        return self.forward(*inputs, **kwargs)

    @property
    def needs_input_grad(self) -> bool:
        """False when nothing needs ∂L/∂(input), as for images fed to the first layer (torch skips
        the gradient of an input that does not require grad): backward then returns None, and
        the layers that can skip computing it do. `Sequential` passes it on to its first module."""
        return self.__dict__.get("_needs_input_grad", True)

    @needs_input_grad.setter
    def needs_input_grad(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"{self._short_repr()}: needs_input_grad must be True or False, got "
                            f"{value!r}")
        object.__setattr__(self, "_needs_input_grad", value)

    # -- what forward keeps for backward ------------------------------------------------------
    def save_for_backward(self, **tensors: Any) -> None:
        """Keep what `backward` needs, unless inside `scratchnet.no_grad()`."""
        object.__setattr__(self, "_ctx", tensors if is_grad_enabled() else None)

    @property
    def saved(self) -> dict[str, Any]:
        """What the last forward saved; a RuntimeError if there is nothing to differentiate."""
        if self._ctx is _CONSUMED:
            raise RuntimeError(
                f"{self._short_repr()}: backward called a second time after one forward: run "
                "forward again first (torch, too, refuses to backward through the graph a "
                "second time)"
            )
        if self._ctx is None:
            raise RuntimeError(
                f"{self._short_repr()}: backward called before forward "
                "(or the last forward ran inside scratchnet.no_grad())"
            )
        return self._ctx

    def accumulate_grad(self, name: str, grad: Tensor) -> None:
        """Add `grad` to `self.<name>.grad` (created on first use); shapes must be equal. A
        frozen parameter (`requires_grad_(False)`) gets no gradient."""
        param = self._parameters[name]
        if grad.shape != param.shape:
            raise GradientShapeError(self, name, tuple(grad.shape), tuple(param.shape))
        if name in self._frozen:
            return
        if param.grad is None:
            param.grad = grad.clone(memory_format=torch.contiguous_format)
        else:
            param.grad.add_(grad)

    # -- registration -------------------------------------------------------------------------
    def register_parameter(self, name: str, value: Tensor | None) -> None:
        _check_entry(self, "parameter", name, value)
        self._parameters[name] = value

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """A tensor that is part of the module's state but not a parameter (no gradient, no
        optimizer): in `state_dict` unless persistent=False, moved and cast by `to()`."""
        _check_entry(self, "buffer", name, tensor)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module: "Module | None") -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{name!r} is not a scratchnet Module: {type(module).__name__}")
        self._modules[name] = module

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, Module):
            self._parameters.pop(name, None)
            self.__dict__.pop(name, None)
            self._modules[name] = value
        elif name in self._parameters:
            self.register_parameter(name, value)
        elif name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign a {type(value).__name__} to buffer {name!r}")
            self._buffers[name] = value
        elif name in self._modules:
            self.add_module(name, value)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        for store in ("_parameters", "_buffers", "_modules"):
            table = self.__dict__.get(store)
            if table is not None and name in table:
                return table[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        if name in self._parameters:
            del self._parameters[name]
        elif name in self._buffers:
            del self._buffers[name]
            self._non_persistent_buffers.discard(name)
        elif name in self._modules:
            del self._modules[name]
        else:
            object.__delattr__(self, name)

    # -- traversal ----------------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        for name, module in self._modules.items():
            if module is not None:
                yield name, module

    def children(self) -> Iterator["Module"]:
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        for _, module in self.named_modules():
            yield module

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        seen: set[int] = set()
        for module_name, module in self.named_modules(prefix):
            for name, param in module._parameters.items():
                if param is None or id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self) -> Iterator[Tensor]:
        for _, param in self.named_parameters():
            yield param

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        for module_name, module in self.named_modules(prefix):
            for name, buf in module._buffers.items():
                if buf is not None:
                    yield (f"{module_name}.{name}" if module_name else name), buf

    def buffers(self) -> Iterator[Tensor]:
        for _, buf in self.named_buffers():
            yield buf

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """fn(module) for every sub-module, then for self (e.g. a custom initialisation)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze every parameter: a frozen one gets no gradient in
        backward, so optimizers leave it alone (torch's `module.requires_grad_(False)`)."""
        for module in self.modules():
            frozen = set() if requires_grad else {k for k, v in module._parameters.items()
                                                  if v is not None}
            object.__setattr__(module, "_frozen", frozen)
        return self

    # -- training state -----------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        for param in self.parameters():
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                param.grad.zero_()

    def train(self, mode: bool = True) -> "Module":
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode) expects a bool, got {mode!r}")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    # -- state --------------------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, Tensor]":
        """Name → tensor for the parameters and persistent buffers, in torch's order (each
        module's parameters, then its buffers, then its children's); no copies, as in torch."""
        state: OrderedDict[str, Tensor] = OrderedDict()
        for module_name, module in self.named_modules():
            dot = f"{module_name}." if module_name else ""
            for name, value in module._parameters.items():
                if value is not None and f"{dot}{name}" not in state:
                    state[f"{dot}{name}"] = value
            for name, value in module._buffers.items():
                if value is not None and name not in module._non_persistent_buffers:
                    state[f"{dot}{name}"] = value
        return state

    def load_state_dict(self, state_dict: Mapping[str, Tensor],
                        strict: bool = True) -> IncompatibleKeys:
        """Copy values into the existing parameter and buffer tensors, so optimizers built
        earlier still see them. → IncompatibleKeys(missing_keys, unexpected_keys), as torch."""
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}: "
                f"missing keys {missing}, unexpected keys {unexpected}"
            )
        for name, param in own.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            if not isinstance(value, Tensor):
                raise TypeError(f"state_dict[{name!r}] is a {type(value).__name__}, not a Tensor")
            if value.shape != param.shape:
                raise RuntimeError(
                    f"size mismatch for {name}: copying a param with shape {tuple(value.shape)}, "
                    f"the shape in the current model is {tuple(param.shape)}"
                )
            param.copy_(value)
        return IncompatibleKeys(missing, unexpected)

    def to(self, *args: Any, **kwargs: Any) -> "Module":
        """Move/cast every parameter (and its gradient) and buffer in place; `to(device)`,
        `to(dtype)`, both. Buffers that are not floating point keep their dtype, as in torch."""
        for param in self.parameters():
            param.data = param.data.to(*args, **kwargs)
            if param.grad is not None:
                param.grad = param.grad.to(device=param.device, dtype=param.dtype)
        for buf in self.buffers():
            if buf.is_floating_point():
                buf.data = buf.data.to(*args, **kwargs)
            else:
                buf.data = buf.data.to(torch.empty(0, device=buf.device).to(*args, **kwargs).device)
        for module in self.modules():
            object.__setattr__(module, "_ctx", None)
        return self

    def cpu(self) -> "Module":
        return self.to("cpu")

    def cuda(self, device: int | None = None) -> "Module":
        return self.to(torch.device("cuda", device) if device is not None else "cuda")

    def double(self) -> "Module":
        return self.to(torch.float64)

    def float(self) -> "Module":
        return self.to(torch.float32)

    # -- printing -----------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def _short_repr(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return self._short_repr()
        lines = [f"{type(self).__name__}("]
        if self.extra_repr():
            lines.append(f"  {self.extra_repr()}")
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        lines.append(")")
        return "\n".join(lines)

