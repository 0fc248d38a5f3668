"""Checks with friendly messages, shared by the notebooks' test cells and the graded tests.

    expect_close(layer.bias.grad, expected, "∂L/∂b", hint="db sums G over the rows")

raises `CheckFailed` (an AssertionError) whose message says which quantity is off and how:
its shape, NaN or inf and where, the largest error and where, a pure scale error ("is 0.125× the
expected value — divided by 8? (a mean instead of a sum?)"), then the hint. Plain torch; works
with autograd off.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

__all__ = ["CheckFailed", "expect_close", "expect_gradcheck", "expect_true"]


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


def _describe_scale(k: float) -> str:
    if abs(k) < 1e-12:
        return "is zero everywhere"
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
                 atol: float = 1e-7, hint: str = "") -> None:
    """Check that `got` equals `want` within |got − want| ≤ atol + rtol·|want|, element-wise.

    got, want: tensors (or numbers) of the same shape; `what` names the quantity as the notebook
    does ("∂L/∂W", "the output y"). Raises CheckFailed naming `what`, the shapes if they differ,
    NaN/inf and where, the largest error, a pure scale error, and then `hint`.
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
    head = (f"{what} {_describe_scale(k)}" if k is not None else
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
    """Raise CheckFailed(message) unless `cond` is true."""
    if not cond:
        _fail(message)
