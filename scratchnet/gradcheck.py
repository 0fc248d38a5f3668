"""`gradcheck`: prove a module's hand-written backward against torch autograd and finite differences.

    report = scratchnet.gradcheck(layer, x)
    print(report)            # a small table: tensor, shape, errors, PASS/FAIL
    assert report.passed

Two independent references, both in float64 by default:
1. torch: the equivalent torch.nn computation (`interop.to_torch`) built from the module's own
   parameters, run with autograd and the same random upstream gradient;
2. central finite differences of ⟨y, g⟩ along random directions, which works for any module,
   including a student's own with no torch twin.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .interop import to_torch
from .module import Module


@dataclass
class CheckRow:
    """One compared tensor: `max_rel_err` is max|a − b| / max(max|b|, tiny)."""

    reference: str
    name: str
    shape: tuple[int, ...]
    max_abs_err: float
    max_rel_err: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return math.isfinite(self.max_rel_err) and self.max_rel_err <= self.tolerance

    def magnitude(self) -> str:
        """A machine-stable summary of the error: the tolerance it stays under."""
        return f"< {self.tolerance:.0e}" if self.passed else f"{self.max_rel_err:.1e}"


@dataclass
class GradcheckReport:
    module: str
    dtype: torch.dtype
    rows: list[CheckRow] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(r.passed for r in self.rows)

    def __str__(self) -> str:
        header = f"gradcheck {self.module} ({str(self.dtype).replace('torch.', '')})"
        lines = [header, f"{'reference':<10} {'tensor':<14} {'shape':<18} {'rel. error':<11} result"]
        for r in self.rows:
            shape = "(" + ", ".join(map(str, r.shape)) + ")"
            lines.append(f"{r.reference:<10} {r.name:<14} {shape:<18} {r.magnitude():<11} "
                         f"{'PASS' if r.passed else 'FAIL'}")
        lines += [f"(skipped: {s})" for s in self.skipped]
        lines.append("ALL PASS" if self.passed else "FAILED")
        return "\n".join(lines)

    __repr__ = __str__

    def assert_passed(self) -> None:
        if not self.passed:
            raise AssertionError(str(self))


def _row(reference: str, name: str, got: Tensor, expected: Tensor, tol: float) -> CheckRow:
    got, expected = got.detach().to(torch.float64), expected.detach().to(torch.float64)
    if got.shape != expected.shape:
        return CheckRow(reference, name, tuple(expected.shape), math.inf, math.inf, tol)
    abs_err = (got - expected).abs().max().item() if got.numel() else 0.0
    scale = expected.abs().max().item() if expected.numel() else 0.0
    return CheckRow(reference, name, tuple(expected.shape), abs_err,
                    abs_err / max(scale, 1e-30) if abs_err else 0.0, tol)


def _analytic(module: Module, x: Tensor, grad_out: Tensor) -> tuple[Tensor, Tensor, dict]:
    module.zero_grad()
    y = module(x)
    grad_in = module.backward(grad_out)
    grads = {n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p))
             for n, p in module.named_parameters()}
    return y, grad_in, grads


def gradcheck(module: Module, x: Tensor, *, dtype: torch.dtype | None = torch.float64,
              seed: int = 0, torch_reference: bool = True, finite_differences: bool = True,
              directions: int = 3, eps: float | None = None, tol: float | None = None) -> GradcheckReport:
    """Compare output, input gradient and every parameter gradient of `module` at `x`.

    The module is copied (and cast to `dtype` unless None), so the caller's module and its
    `.grad`s are untouched. `tol` defaults to 1e-10 for torch and 1e-6 for finite differences
    in float64, 1e-4 and 1e-2 in float32; the finite-difference step `eps` to 1e-6 and 1e-3.
    """
    m = copy.deepcopy(module)
    if dtype is not None:
        m.to(dtype)
        x = x.to(dtype)
    x = x.detach().clone()
    m.train()
    wide = x.dtype == torch.float64
    tol_torch = tol if tol is not None else (1e-10 if wide else 1e-4)
    tol_fd = tol if tol is not None else (1e-6 if wide else 1e-2)
    eps = eps if eps is not None else (1e-6 if wide else 1e-3)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    report = GradcheckReport(type(module).__name__, x.dtype)

    y = m(x)
    grad_out = torch.randn(y.shape, generator=generator, dtype=y.dtype).to(y.device)
    y, grad_in, grads = _analytic(m, x, grad_out)

    if torch_reference:
        try:
            tm = to_torch(m)
        except TypeError as error:
            report.skipped.append(f"torch reference: {error}")
        else:
            with torch.enable_grad():
                xt = x.clone().requires_grad_(True)
                yt = tm(xt)
                yt.backward(grad_out)
            report.rows.append(_row("torch", "output", y, yt, tol_torch))
            report.rows.append(_row("torch", "grad input", grad_in, xt.grad, tol_torch))
            for name, p in tm.named_parameters():
                report.rows.append(_row("torch", f"grad {name}", grads[name], p.grad, tol_torch))

    if finite_differences:
        def objective() -> float:
            return float((m(x) * grad_out).sum().item())

        targets = [("grad input", x, grad_in)] + [
            (f"grad {n}", p, grads[n]) for n, p in m.named_parameters()]
        for name, tensor, analytic in targets:
            original = tensor.clone()
            numeric, predicted = [], []
            for _ in range(directions):
                v = torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
                v = v.to(tensor.device)
                tensor.copy_(original + eps * v)
                plus = objective()
                tensor.copy_(original - eps * v)
                minus = objective()
                tensor.copy_(original)
                numeric.append((plus - minus) / (2 * eps))
                predicted.append(float((analytic * v).sum().item()))
            report.rows.append(_row("finite-d", name, torch.tensor(predicted),
                                    torch.tensor(numeric), tol_fd))
            report.rows[-1].shape = tuple(tensor.shape)
    return report
