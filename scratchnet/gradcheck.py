"""`gradcheck`: prove a module's hand-written backward against torch autograd and finite differences.

    report = scratchnet.gradcheck(layer, x)            # a loss: gradcheck(crit, prediction, target)
    print(report)            # a table: tensor, shape, relative error, tolerance, PASS/FAIL
    assert report.passed

Two independent references, both in float64 by default:
1. torch: the equivalent torch.nn computation (`interop.to_torch`) built from the module's own
   parameters, run with autograd and the same random upstream gradient;
2. central finite differences of ⟨y, g⟩ along random directions, which works for any module,
   including a student's own with no torch twin.
A third check runs backward twice without `zero_grad` and expects every parameter gradient to
double: gradients accumulate, they are not overwritten.

A module whose forward returns a tuple, such as MaxPool2d(return_indices=True) with its
(output, indices), is checked on its first output: the upstream gradient, the torch reference and
the finite differences all use it alone (the indices have no gradient). Every forward gets its own
copy of x, so an in-place layer (LeakyReLU(inplace=True)) cannot spoil the point checked.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .interop import to_torch
from .module import GradientShapeError, Module


@dataclass
class CheckRow:
    """One compared tensor: `max_rel_err` is max|a − b| / max(max|b|, tiny); `shape_ok` is False
    when the computed tensor does not even have the reference's shape."""

    reference: str
    name: str
    shape: tuple[int, ...]
    max_abs_err: float
    max_rel_err: float
    tolerance: float
    shape_ok: bool = True

    @property
    def passed(self) -> bool:
        return self.shape_ok and math.isfinite(self.max_rel_err) and self.max_rel_err <= self.tolerance

    def error_text(self) -> str:
        """The relative error as printed in a report: `3.1e-16`, `0` when the two agree exactly,
        `bad shape` or `not finite` when there is no number to print."""
        if not self.shape_ok:
            return "bad shape"
        if not math.isfinite(self.max_rel_err):
            return "not finite"
        return "0" if self.max_rel_err == 0 else f"{self.max_rel_err:.1e}"

    def magnitude(self) -> str:
        """A machine-stable summary of the error: the tolerance it stays under, or the power of
        ten it reaches."""
        if not self.shape_ok:
            return "bad shape"
        if self.passed:
            return f"< {self.tolerance:.0e}"
        if not math.isfinite(self.max_rel_err):
            return "not finite"
        return f"≥ 1e{math.floor(math.log10(self.max_rel_err)):+03d}"


@dataclass
class GradcheckReport:
    module: str
    dtype: torch.dtype
    rows: list[CheckRow] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(r.passed for r in self.rows)

    def __str__(self) -> str:
        """One aligned row per compared tensor: the relative error itself (two significant
        digits), the tolerance it is held to, and PASS/FAIL; columns widen for long names."""
        header = ["reference", "tensor", "shape", "rel. error", "tolerance", "result"]
        body = [[r.reference, r.name, "(" + ", ".join(map(str, r.shape)) + ")", r.error_text(),
                 f"{r.tolerance:.0e}", "PASS" if r.passed else "FAIL"] for r in self.rows]
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
        right = {3, 4}                                   # numbers: aligned on the right

        def line(cells: list[str]) -> str:
            return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        lines = [f"gradcheck {self.module} ({str(self.dtype).replace('torch.', '')})",
                 line(header), *map(line, body)]
        lines += [f"(skipped: {s})" for s in self.skipped]
        lines += [f"(error: {e})" for e in self.errors]
        lines.append("ALL PASS" if self.passed else "FAILED")
        return "\n".join(lines)

    __repr__ = __str__

    def assert_passed(self) -> None:
        if not self.passed:
            raise AssertionError(str(self))


# a tensor whose operations are torch's own: a subclass's code may answer any of them,
# comparisons included
PLAIN_TENSORS = (Tensor, torch.nn.Parameter)


def _plain(value: object, what: str) -> object:
    """`value`, unless it is a tensor of a subclass of torch.Tensor (not PLAIN_TENSORS): then a
    TypeError."""
    if isinstance(value, Tensor) and type(value) not in PLAIN_TENSORS:
        raise TypeError(f"{what} is a {type(value).__name__}, a subclass of torch.Tensor: "
                        "a module returns plain tensors")
    return value


def _row(reference: str, name: str, got: Tensor, expected: Tensor, tol: float) -> CheckRow:
    _plain(got, name)
    got, expected = got.detach().to(torch.float64), expected.detach().to(torch.float64)
    if got.shape != expected.shape:
        return CheckRow(reference, name, tuple(expected.shape), math.inf, math.inf, tol, False)
    abs_err = (got - expected).abs().max().item() if got.numel() else 0.0
    scale = expected.abs().max().item() if expected.numel() else 0.0
    return CheckRow(reference, name, tuple(expected.shape), abs_err,
                    abs_err / max(scale, 1e-30) if abs_err else 0.0, tol)


def _first(output: Tensor | tuple[Tensor, ...]) -> Tensor:
    """The output that is checked: the first one of a forward that returns a tuple."""
    return _plain(output[0] if isinstance(output, tuple) else output, "the output")


def _analytic(module: Module, inputs: tuple[Tensor, ...], grad_out: Tensor,
              ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    y = _first(module(inputs[0].clone(), *inputs[1:]))
    grad_in = module.backward(grad_out)
    grads = {n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p))
             for n, p in module.named_parameters()}
    return y, grad_in, grads


def _qualified_name(model: Module, error: GradientShapeError) -> str:
    for prefix, module in model.named_modules():
        if module is error.module:
            return f"{prefix}.{error.parameter}" if prefix else error.parameter
    return error.parameter


def gradcheck(module: Module, x: Tensor, *constants: Tensor,
              dtype: torch.dtype | None = torch.float64, seed: int = 0,
              torch_reference: bool = True, finite_differences: bool = True, directions: int = 3,
              eps: float | None = None, tol: float | None = None) -> GradcheckReport:
    """Compare output, input gradient and every parameter gradient of `module` at `x`.

    `constants` are further inputs held fixed (a loss's target: `gradcheck(crit, pred, target)`).
    A forward that returns a tuple is checked on its first output (module docstring).
    The module is copied (and cast to `dtype` unless None), so the caller's module and its
    `.grad`s are untouched; in the copy every module's `needs_input_grad` is True, as the check
    needs ∂L/∂x. `tol` defaults to 1e-10 for torch and the accumulation check and
    1e-6 for finite differences in float64, 1e-4 and 1e-2 in float32; the finite-difference
    step `eps` to 1e-6 and 1e-3.
    """
    m = copy.deepcopy(module)
    for sub in m.modules():
        if not sub.needs_input_grad:
            sub.needs_input_grad = True
    inputs = (x, *constants)
    if dtype is not None:
        m.to(dtype)
        inputs = tuple(t.to(dtype) if t.is_floating_point() else t for t in inputs)
    x, *rest = (t.detach().clone() for t in inputs)
    m.train()
    m.zero_grad()
    wide = x.dtype == torch.float64
    tol_torch = tol if tol is not None else (1e-10 if wide else 1e-4)
    tol_fd = tol if tol is not None else (1e-6 if wide else 1e-2)
    eps = eps if eps is not None else (1e-6 if wide else 1e-3)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    report = GradcheckReport(type(module).__name__, x.dtype)

    y = _first(m(x.clone(), *rest))
    # Uniform, not normal: an input drawn with torch.randn after manual_seed(seed) is then never
    # equal to the upstream gradient (which would make Gᵀ·X symmetric and hide transposes).
    grad_out = (2 * torch.rand(y.shape, generator=generator, dtype=y.dtype) - 1).to(y.device)
    try:
        y, grad_in, grads = _analytic(m, (x, *rest), grad_out)
    except GradientShapeError as error:
        report.rows.append(CheckRow("backward", f"grad {_qualified_name(m, error)}",
                                    error.param_shape, math.inf, math.inf, tol_torch, False))
        report.errors.append(str(error))
        return report

    if torch_reference:
        try:
            tm = to_torch(m)
        except TypeError as error:
            report.skipped.append(f"torch reference: {error}")
        else:
            with torch.enable_grad():
                xt = x.clone().requires_grad_(True)
                yt = _first(tm(xt.clone(), *rest))       # not a leaf: in-place layers may write it
                yt.backward(grad_out)
            report.rows.append(_row("torch", "output", y, yt, tol_torch))
            report.rows.append(_row("torch", "grad input", grad_in, xt.grad, tol_torch))
            for name, p in tm.named_parameters():
                report.rows.append(_row("torch", f"grad {name}", grads[name], p.grad, tol_torch))

    if finite_differences:
        def objective() -> float:
            return float((_first(m(x.clone(), *rest)) * grad_out).sum().item())

        targets = [("grad input", x, grad_in)] + [
            (f"grad {n}", p, grads[n]) for n, p in m.named_parameters()]
        for name, tensor, analytic in targets:
            if analytic.shape != tensor.shape:
                report.rows.append(CheckRow("finite-d", name, tuple(tensor.shape), math.inf,
                                            math.inf, tol_fd, False))
                continue
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
            # float64 lists: torch.tensor(list) would make float32 and round the errors away
            report.rows.append(_row("finite-d", name,
                                    torch.tensor(predicted, dtype=torch.float64),
                                    torch.tensor(numeric, dtype=torch.float64), tol_fd))
            report.rows[-1].shape = tuple(tensor.shape)

    m(x.clone(), *rest)
    m.backward(grad_out)
    for name, p in m.named_parameters():
        twice = p.grad if p.grad is not None else torch.zeros_like(p)
        report.rows.append(_row("accumulate", f"grad {name}", twice, 2 * grads[name], tol_torch))
    return report
