"""Checks with friendly messages, shared by the notebooks' test cells and the graded tests.

    expect_close(layer.bias.grad, expected, "∂L/∂b", hint="db sums G over the rows")

raises `CheckFailed` (an AssertionError) whose message says which quantity is off and how:
its shape, NaN or inf and where, the largest error and where, a pure scale error ("is 0.125× the
expected value — divided by 8? (a mean instead of a sum?)", or the mistake a test names for that
factor), then the hint. Plain torch; works with autograd off.

    with reporting_crashes("T04.3"):
        conv.conv2d_forward(x, weight, None, stride, padding, dilation, groups)

turns an exception raised in the task's code into a CheckFailed that names the call (function,
shapes, arguments), where it was raised and the task's hint; the task tests run under it.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import math
import re
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import torch
from torch import Tensor

from ..gradcheck import PLAIN_TENSORS
from .guard import PACKAGE, is_student_file
from .tasks import BY_ID, Task, task

__all__ = ["CheckFailed", "expect_close", "expect_gradcheck", "expect_true", "is_student_file",
           "reporting_crashes"]



class CheckFailed(AssertionError):
    """A check failed; the message says what is wrong, in the notebook's words, and a hint."""


def _fail(message: str, hint: str = "") -> None:
    """Raise CheckFailed(message + hint). Every check raises from this one line, so that
    Hypothesis counts the failures of a test as one bug and reports the simplest example."""
    raise CheckFailed(message + (f"\nHint: {hint}" if hint else ""))


def _shape(shape: tuple[int, ...] | torch.Size) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


def _where(flat_index: int, shape: torch.Size) -> str:
    """The index of element `flat_index` of a tensor of `shape`, e.g. '(1, 0, 2)'."""
    index = []
    for size in reversed(shape):
        index.append(flat_index % size)
        flat_index //= size
    return str(tuple(reversed(index))) if index else "(the only element)"


def _as_tensor(value: object, what: str, role: str) -> Tensor:
    if isinstance(value, Tensor):
        if type(value) not in PLAIN_TENSORS:    # its own code would answer the comparison
            _fail(f"{what} is a {type(value).__name__}, a subclass of torch.Tensor: "
                  "a plain tensor is expected")
        return value.detach()
    if value is None:
        _fail(f"{what} is None: nothing was {'computed' if role == 'got' else 'given'} (does "
              f"the function return it? a parameter's gradient: stored with accumulate_grad?)")
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        pass
    _fail(f"{what} should be a tensor, got a {type(value).__name__}")
    raise AssertionError("unreachable")


def scale_factor(got: Tensor, want: Tensor, rtol: float, atol: float) -> float | None:
    """k when got ≈ k·want (to about 1e-6) for a k ≠ 1 — the least-squares k = ⟨got, want⟩ /
    ⟨want, want⟩ — else None. got, want: float64 tensors of the same shape."""
    norm = float((want * want).sum())
    if norm == 0.0:
        return None
    k = float((got * want).sum()) / norm
    scaled = k * want
    loose = max(atol, 1e-6 * float(scaled.abs().max()))   # a scale error hides small ones (ε)
    if abs(k - 1) <= max(10 * rtol, 1e-6) or not torch.allclose(got, scaled, rtol=1e-6,
                                                                 atol=loose):
        return None
    return k


def _describe_scale(k: float, mistakes: Mapping[float, str]) -> str:
    if abs(k) < 1e-12:
        return "is zero everywhere"
    for factor, mistake in mistakes.items():
        if abs(k - factor) <= 1e-6 * abs(factor):
            return f"is {k:.4g}× the expected value — {mistake}"
    if abs(k + 1) < 1e-6:
        return "has the wrong sign (it is −1× the expected value)"
    text = f"is {k:.4g}× the expected value"
    m = round(1 / k)
    if m > 1 and abs(1 / k - m) < 1e-6 * m:
        text += f" — divided by {m}? (a mean instead of a sum?)"
    elif round(k) > 1 and abs(k - round(k)) < 1e-6 * k:
        text += f" — multiplied by {round(k)}? (a division missing?)"
    return text


def expect_close(got: object, want: object, what: str, *, rtol: float = 1e-5,
                 atol: float = 1e-7, hint: str = "",
                 mistakes: Mapping[float, str] | None = None) -> None:
    """Check that `got` equals `want` within |got − want| ≤ atol + rtol·|want|, element-wise.

    got, want: tensors (or numbers) of the same shape; `what` names the quantity as the notebook
    does ("∂L/∂W", "the output y"). Raises CheckFailed naming `what`, the shapes if they differ,
    NaN/inf and where, the largest error, a pure scale error, and then `hint`. `mistakes` maps a
    scale factor k to the mistake that makes got = k·want in this case ({4.0: "divided by the
    batch size N = 3 instead of numel = 12"}): a scale error of one of them names it.
    """
    got, want = _as_tensor(got, what, "got"), _as_tensor(want, what, "want")
    if got.shape != want.shape:
        extra = ""
        if got.dim() == want.dim() == 2 and tuple(got.shape) == tuple(reversed(want.shape)):
            extra = " — transposed?"
        elif got.numel() == want.numel():
            extra = " — same number of elements: reshaped in the wrong order or not at all?"
        _fail(f"{what} has shape {_shape(got.shape)} but should have shape "
              f"{_shape(want.shape)}{extra}", hint)
    g = got.to(device="cpu", dtype=torch.float64)
    w = want.to(device="cpu", dtype=torch.float64)
    for bad, name in ((torch.isnan(g) & ~torch.isnan(w), "NaN"),
                      (torch.isinf(g) & ~torch.isinf(w), "inf")):
        if bad.any():
            first = int(bad.reshape(-1).nonzero()[0])
            count = int(bad.sum())
            _fail(f"{what} contains {name} at {_where(first, g.shape)} ({count} of {g.numel()} "
                  f"elements; expected {w.reshape(-1)[first].item():.6g} there)", hint)
    if g.numel() == 0 or torch.allclose(g, w, rtol=rtol, atol=atol, equal_nan=True):
        return
    error = (g - w).abs().nan_to_num(nan=0.0)
    flat = int(error.reshape(-1).argmax())
    worst = float(error.reshape(-1)[flat])
    largest = float(w.abs().nan_to_num(nan=0.0).max())
    wrong = int((~torch.isclose(g, w, rtol=rtol, atol=atol, equal_nan=True)).sum())
    k = scale_factor(g, w, rtol, atol)
    head = (f"{what} {_describe_scale(k, mistakes or {})}" if k is not None else
            f"{what} differs from the expected value in {wrong} of {g.numel()} elements")
    dtype = ""
    if got.dtype != want.dtype:
        dtype = (f"\n  {what} is {str(got.dtype).removeprefix('torch.')}, expected "
                 f"{str(want.dtype).removeprefix('torch.')}: was a tensor created without "
                 f"dtype= (x.new_zeros(…) and torch.zeros_like(x) keep x's dtype)?")
    a, b = g.reshape(-1)[flat].item(), w.reshape(-1)[flat].item()
    digits = 6 if f"{a:.6g}" != f"{b:.6g}" else 15
    _fail(f"{head}\n  max abs error {worst:.3g} at {_where(flat, g.shape)} (got "
          f"{a:.{digits}g}, expected {b:.{digits}g}), "
          f"relative error {worst / largest if largest else math.inf:.3g}; "
          f"tolerance rtol={rtol:g}, atol={atol:g}{dtype}", hint)


_TENSOR_NAMES = {"output": "the output y", "grad input": "∂L/∂x"}
_REFERENCES = {"torch": "against torch", "finite-d": "against finite differences",
               "accumulate": "when backward runs twice (it must double)"}
_ACCUMULATE_HINT = ("gradients accumulate: add to p.grad (self.accumulate_grad), never overwrite "
                    "it; zero_grad() is what resets them")


def expect_gradcheck(report: object, hints: Mapping[str, str] | None = None) -> None:
    """Check that a `scratchnet.gradcheck` report passed; otherwise name every failing row.

    `hints` maps a tensor's name to its hint: "input", "output", "weight", "bias" or a qualified
    parameter name such as "0.weight" (tried first).
    """
    hints = dict(hints or {})
    if getattr(report, "passed", False):
        return
    rows = list(getattr(report, "rows", []))
    lines = [f"gradcheck of {getattr(report, 'module', 'the module')} failed:"]
    if not rows:
        lines.append("  nothing was compared")
    given: list[str] = []
    for row in rows:
        if row.passed:
            continue
        name = row.name.removeprefix("grad ")
        quantity = _TENSOR_NAMES.get(row.name, f"∂L/∂{name}")
        if not row.shape_ok:
            error = f"has the wrong shape (expected {_shape(row.shape)})"
        elif not math.isfinite(row.max_rel_err):
            error = "is not finite (NaN or inf)"
        else:
            error = f"relative error {row.max_rel_err:.2g} (tolerance {row.tolerance:.0e})"
        lines.append(f"  {quantity} {_REFERENCES.get(row.reference, row.reference)}: {error}")
        key = "input" if row.name == "grad input" else name
        hint = hints.get(key) or hints.get(key.rsplit(".", 1)[-1])
        if hint is None and row.reference == "accumulate":
            hint = _ACCUMULATE_HINT
        if hint and hint not in given:
            given.append(hint)
    lines += [f"  ({error})" for error in getattr(report, "errors", [])]
    lines += [f"Hint: {hint}" for hint in given]
    _fail("\n".join(lines))


def expect_true(cond: object, message: str) -> None:
    """Raise CheckFailed(message) unless `cond` is True: a bool, or a plain tensor of one
    element (`torch.isfinite(y).all()`). Anything else — an object that decides its own truth,
    such as what a class with its own __eq__ returns — fails."""
    if type(cond) is Tensor and cond.numel() == 1:
        cond = bool(cond)
    if type(cond) is not bool:
        _fail(f"{message}\n(the check got a value of type {type(cond).__name__}, not True or False)")
    if not cond:
        _fail(message)


# -- crashes in the student's code -------------------------------------------------------------
_CALL = "_scratchnet_call"          # the attribute of an exception that remembers its call


@dataclass(frozen=True)
class _Call:
    """A call of a task's function that raised: the task, the function's name as the registry
    writes it ("conv2d_forward", "Linear.backward"), the function and its arguments."""

    task: Task
    name: str
    function: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


def _is_stub(error: BaseException) -> bool:
    """A blank task's NotImplementedError, whose message already says what to write."""
    return isinstance(error, NotImplementedError) and str(error).split(" ", 1)[0] in BY_ID


def _remembering(function: Callable[..., Any], t: Task, name: str) -> Callable[..., Any]:
    """`function`, which marks an exception it raises with its call (the innermost one)."""
    @functools.wraps(function)
    def remembering(*args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True        # pytest: the traceback goes on in the student's code
        try:
            return function(*args, **kwargs)
        except Exception as error:
            if not (isinstance(error, CheckFailed) or _is_stub(error) or hasattr(error, _CALL)):
                setattr(error, _CALL, _Call(t, name, function, args, kwargs))
            raise
    return remembering


def _owner(where: str) -> tuple[Any, str, str]:
    """'scratchnet/linear.py:Linear.backward' → (the class Linear, 'backward',
    'Linear.backward'): where the registry's function lives, and its name."""
    path, name = where.split(":")
    *classes, attribute = name.split(".")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return functools.reduce(getattr, classes, module), attribute, name


def _describe(value: object) -> str:
    """A short description of an argument: a tensor by its shape, a module by its one-line repr."""
    if isinstance(value, Tensor):
        return f"a tensor of shape {_shape(value.shape)}"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k!r}: {_describe(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        items = ", ".join(map(_describe, value)) + ("," if len(value) == 1 else "")
        return f"[{items}]" if isinstance(value, list) else f"({items})"
    text = re.sub(r"(?<=\() | (?=\))", "", " ".join(repr(value).split()))  # one line
    if " object at 0x" in text:
        return f"a {type(value).__name__}"
    return text if len(text) <= 160 else text[:159] + "…"


def _arguments(call: _Call) -> tuple[object, list[tuple[str, Any]]]:
    """(the object a method was called on, or None; the other arguments by name, defaults
    included — '' for those that *args takes, or all positional ones where the signature does not
    fit the call)."""
    arguments: list[tuple[str, Any]] = []
    try:
        signature = inspect.signature(call.function)
        bound = signature.bind(*call.args, **call.kwargs)
    except (TypeError, ValueError):
        arguments = [("", a) for a in call.args] + list(call.kwargs.items())
    else:
        bound.apply_defaults()
        for key, value in bound.arguments.items():
            kind = signature.parameters[key].kind
            arguments += ([("", v) for v in value] if kind is inspect.Parameter.VAR_POSITIONAL
                          else list(value.items()) if kind is inspect.Parameter.VAR_KEYWORD
                          else [(key, value)])
    if "." in call.name and arguments:
        return arguments[0][1], arguments[1:]
    return None, arguments


def _describe_call(call: _Call) -> str:
    """'conv2d_forward(x of shape (2, 3, 7, 6), …, bias=None, stride=(2, 1), …)', or for a method
    'Linear(in_features=4, out_features=3, bias=False).backward(grad_output of shape (5, 3))'."""
    receiver, arguments = _arguments(call)
    name = call.name
    if receiver is not None:            # a module by its repr, another object by its class
        owner = (_describe(receiver) if hasattr(receiver, "extra_repr")
                 else type(receiver).__name__)
        name = f"{owner}.{name.rsplit('.', 1)[1]}"
    shown = [_describe(value) if not key else
             f"{key} of shape {_shape(value.shape)}" if isinstance(value, Tensor) else
             f"{key}={_describe(value)}" for key, value in arguments]
    return f"{name}({', '.join(shown)})"


def _none_arguments(call: _Call) -> list[str]:
    """The call's arguments that are None, and the None parameters of the module it was called
    on ('self.bias')."""
    receiver, arguments = _arguments(call)
    return ([key for key, value in arguments if key and value is None]
            + [f"self.{key}" for key, value in getattr(receiver, "_parameters", {}).items()
               if value is None])


def raised_at(error: BaseException) -> str:
    """'  at scratchnet/conv.py:12, in conv2d_forward: <the line>', the innermost frame of the
    student's package that `error` passed through, or ''."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if is_student_file(f.filename)]
    if not frames:
        return ""
    frame = frames[-1]
    path = Path(frame.filename).resolve().relative_to(PACKAGE.parent).as_posix()
    return f"  at {path}:{frame.lineno}, in {frame.name}" + (f": {frame.line}" if frame.line
                                                             else "")


def _crash_message(error: BaseException, call: _Call) -> str:
    """What `reporting_crashes` says about `error`, raised in `call`."""
    lines = [f"{_describe_call(call)} raised {type(error).__name__}: {error}"]
    where = raised_at(error)
    if where:
        lines.append(where)
    nones = _none_arguments(call)
    if nones and "NoneType" in str(error):
        verb, it = ("is", "it") if len(nones) == 1 else ("are", "them")
        bias = any(name.endswith("bias") for name in nones)
        lines.append(f"  {' and '.join(nones)} {verb} None in this case: use {it} only when not "
                     "None" + (" (a layer built with bias=False has bias None)" if bias else ""))
    return "\n".join(lines) + f"\nHint: {call.task.stub_message(call.name)}"


class reporting_crashes:
    """`with reporting_crashes("T04.3"): …` runs the block with the functions of the task (the
    registry's `where`) wrapped: an exception that one of them raises (not a CheckFailed, nor a
    blank task's stub) and that leaves the block becomes a CheckFailed naming the call — the
    function, its arguments (tensors by shape; bias, stride, padding, groups, … by value), the
    line of the package that raised, and the task's hint — raised from the original exception,
    whose traceback pytest shows first."""

    def __init__(self, task_id: str) -> None:
        self.task = task(task_id)
        self._patched: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> None:
        for where in self.task.where:
            owner, attribute, name = _owner(where)
            original = getattr(owner, attribute)
            setattr(owner, attribute, _remembering(original, self.task, name))
            self._patched.append((owner, attribute, original))

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        __tracebackhide__ = True
        while self._patched:
            owner, attribute, original = self._patched.pop()
            setattr(owner, attribute, original)
        call = getattr(error, _CALL, None) if isinstance(error, Exception) else None
        if call is not None:
            raise CheckFailed(_crash_message(error, call)) from error
