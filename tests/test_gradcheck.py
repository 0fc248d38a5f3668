"""`gradcheck` passes on every layer and fails, on the right row, on deliberately broken ones."""
from __future__ import annotations

import re

import pytest
import torch
from strategies import make_tensor

import scratchnet as sn


def _reference(module: sn.Module) -> sn.Module:
    for m in module.modules():
        if "impl" in vars(m):
            m.impl = "reference"
    return module


X4 = (2, 2, 5, 6)
CASES = {
    "Conv2d": (lambda: sn.Conv2d(2, 4, 3, stride=(2, 1), padding=1, dilation=(1, 2), groups=2),
               X4),
    "Conv2d reference": (lambda: _reference(sn.Conv2d(2, 3, (2, 3), padding=(0, 1))), X4),
    "ConvTranspose2d": (lambda: sn.ConvTranspose2d(2, 4, 3, stride=2, padding=1,
                                                   output_padding=1, groups=2), X4),
    "ConvTranspose2d reference": (lambda: _reference(sn.ConvTranspose2d(2, 3, (3, 2), stride=2)),
                                  X4),
    "Upsampling": (lambda: sn.Upsampling(2, 3, 3, scale_factor=(2, 3), padding=1), X4),
    "Upsampling strided": (lambda: sn.Upsampling(2, 3, 3, stride=2, dilation=(1, 2)), X4),
    "Upsampling reference": (lambda: _reference(sn.Upsampling(2, 3, 3, padding=1)), X4),
    "NearestUpsampling": (lambda: sn.NearestUpsampling(scale_factor=(2, 3)), X4),
    "ReLU": (lambda: sn.ReLU(), (2, 3, 4)),
    "LeakyReLU": (lambda: sn.LeakyReLU(0.2), (2, 3, 4)),
    "Sigmoid": (lambda: sn.Sigmoid(), (2, 3, 4)),
    "Tanh": (lambda: sn.Tanh(), (2, 3, 4)),
    "Linear": (lambda: sn.Linear(6, 3), X4),
    "Flatten": (lambda: sn.Flatten(), X4),
    "MaxPool2d": (lambda: sn.MaxPool2d(2, padding=1), X4),
    "Identity": (lambda: sn.Identity(), X4),
    "Sequential": (lambda: sn.Sequential(sn.Conv2d(2, 3, 3, padding=1), sn.Tanh(), sn.Flatten(),
                                         sn.Linear(90, 2)), X4),
    "Residual": (lambda: sn.Residual(sn.Sequential(sn.Conv2d(2, 2, 3, padding=1), sn.ReLU())),
                 X4),
    "Concat": (lambda: sn.Concat(sn.Conv2d(2, 1, 1), sn.MaxPool2d(3, 1, 1)), X4),
}


@pytest.mark.parametrize("name", CASES)
def test_passes_on_every_layer(name):
    make, shape = CASES[name]
    layer = make()
    x = make_tensor(shape, 0, dtype=torch.float32, distinct=name == "MaxPool2d")
    report = sn.gradcheck(layer, x)
    report.assert_passed()
    params = [n for n, _ in layer.named_parameters()]
    rows = {(r.reference, r.name) for r in report.rows}
    expected = {("torch", "output"), ("torch", "grad input"), ("finite-d", "grad input")}
    for n in params:
        expected |= {("torch", f"grad {n}"), ("finite-d", f"grad {n}"), ("accumulate", f"grad {n}")}
    assert rows == expected
    assert all(p.dtype == torch.float32 for p in layer.parameters())
    assert all(p.grad is None for p in layer.parameters())


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_passes_on_the_loss(reduction):
    pred, target = make_tensor((2, 3, 4), 0), make_tensor((2, 3, 4), 1)
    report = sn.gradcheck(sn.MSELoss(reduction), pred, target)
    report.assert_passed()
    assert {(r.reference, r.name) for r in report.rows} == {
        ("torch", "output"), ("torch", "grad input"), ("finite-d", "grad input")}


def test_float32_with_its_own_tolerances():
    report = sn.gradcheck(sn.Conv2d(2, 3, 3), make_tensor(X4, 0, dtype=torch.float32),
                          dtype=None)
    assert report.dtype == torch.float32
    report.assert_passed()
    assert {r.tolerance for r in report.rows} == {1e-4, 1e-2}


def failing(report: sn.GradcheckReport) -> set[tuple[str, str]]:
    return {(r.reference, r.name) for r in report.rows if not r.passed}


class MeanBiasLinear(sn.Linear):
    """Bug: the bias gradient averaged over the rows instead of summed."""

    def backward(self, grad_output):
        g = grad_output.reshape(-1, self.out_features)
        self.accumulate_grad("weight", g.T @ self.saved["x"].reshape(-1, self.in_features))
        self.accumulate_grad("bias", g.mean(0))
        return grad_output @ self.weight


class OverwritingLinear(sn.Linear):
    """Bug: each backward replaces the gradients instead of adding to them."""

    def accumulate_grad(self, name, grad):
        self._parameters[name].grad = grad.clone()


class HalfScaleMSE(sn.MSELoss):
    """Bug: d mean((p − t)²)/dp written without the factor 2."""

    def backward(self, grad_output=1.0):
        diff = self.saved["diff"]
        return diff * (grad_output / diff.numel())


class TransposedWeightGradLinear(sn.Linear):
    """Bug: dW = Xᵀ·G instead of Gᵀ·X (a shape error unless in == out)."""

    def backward(self, grad_output):
        g = grad_output.reshape(-1, self.out_features)
        self.accumulate_grad("weight", self.saved["x"].reshape(-1, self.in_features).T @ g)
        self.accumulate_grad("bias", g.sum(0))
        return grad_output @ self.weight


class TransposedInputGradTanh(sn.Tanh):
    """Bug: the input gradient comes back with its last two axes swapped."""

    def backward(self, grad_output):
        return super().backward(grad_output).transpose(-1, -2)


def test_fails_on_bias_gradient_as_mean():
    report = sn.gradcheck(MeanBiasLinear(4, 3), make_tensor((5, 4), 0))
    assert not report.passed
    assert failing(report) == {("torch", "grad bias"), ("finite-d", "grad bias")}
    with pytest.raises(AssertionError, match="FAILED"):
        report.assert_passed()


def test_fails_on_overwritten_gradients():
    report = sn.gradcheck(OverwritingLinear(4, 3), make_tensor((5, 4), 0))
    assert failing(report) == {("accumulate", "grad weight"), ("accumulate", "grad bias")}


def test_fails_on_wrong_mse_scale():
    report = sn.gradcheck(HalfScaleMSE(), make_tensor((3, 4), 0), make_tensor((3, 4), 1))
    assert failing(report) == {("torch", "grad input"), ("finite-d", "grad input")}


def test_fails_on_transposed_weight_gradient():
    square = sn.gradcheck(TransposedWeightGradLinear(3, 3), make_tensor((5, 3), 0))
    assert failing(square) == {("torch", "grad weight"), ("finite-d", "grad weight")}
    wide = sn.gradcheck(sn.Sequential(sn.Tanh(), TransposedWeightGradLinear(4, 3)),
                        make_tensor((5, 4), 0))
    assert not wide.passed
    assert [(r.reference, r.name, r.shape, r.magnitude()) for r in wide.rows] == [
        ("backward", "grad 1.weight", (3, 4), "bad shape")]
    assert "gradient of shape (4, 3) for parameter 'weight' of shape (3, 4)" in str(wide)


def test_fails_on_transposed_input_gradient():
    report = sn.gradcheck(TransposedInputGradTanh(), make_tensor((2, 3, 4), 0))
    assert failing(report) == {("torch", "grad input"), ("finite-d", "grad input")}
    assert {r.magnitude() for r in report.rows if not r.passed} == {"bad shape"}


class ChannelScale(sn.Module):
    """A student's own layer with no torch twin: y = x · gain[c]; x: (N, C, H, W)."""

    def __init__(self, channels: int, sum_over_batch: bool = True) -> None:
        super().__init__()
        self.register_parameter("gain", torch.linspace(0.5, 1.5, channels))
        self.sum_over_batch = sum_over_batch

    def forward(self, x):
        self.save_for_backward(x=x)
        return x * self.gain.view(1, -1, 1, 1)

    def backward(self, grad_output):
        x = self.saved["x"]
        dims = (0, 2, 3) if self.sum_over_batch else (2, 3)
        grad = (grad_output * x).sum(dims)
        self.accumulate_grad("gain", grad if self.sum_over_batch else grad[0])
        return grad_output * self.gain.view(1, -1, 1, 1)


def test_custom_module_without_torch_twin_uses_finite_differences_only():
    report = sn.gradcheck(ChannelScale(3), make_tensor((2, 3, 4, 5), 0))
    report.assert_passed()
    assert {r.reference for r in report.rows} == {"finite-d", "accumulate"}
    assert len(report.skipped) == 1 and "no counterpart for ChannelScale" in report.skipped[0]
    assert "(skipped: torch reference: to_torch: no counterpart for ChannelScale" in str(report)
    broken = sn.gradcheck(ChannelScale(3, sum_over_batch=False), make_tensor((2, 3, 4, 5), 0))
    assert failing(broken) == {("finite-d", "grad gain")}


ERROR_TEXT = re.compile(r"^(0|\d\.\de[+-]\d\d|bad shape|not finite)$")


@pytest.mark.parametrize("report", [
    lambda: sn.gradcheck(sn.Conv2d(2, 3, 3), make_tensor(X4, 0)),
    lambda: sn.gradcheck(MeanBiasLinear(4, 3), make_tensor((5, 4), 0)),
    lambda: sn.gradcheck(sn.Sequential(TransposedWeightGradLinear(4, 3)), make_tensor((5, 4), 0)),
    lambda: sn.gradcheck(ChannelScale(3), make_tensor((2, 3, 4, 5), 0), dtype=torch.float32),
    lambda: sn.gradcheck(sn.Residual(sn.Sequential(sn.Conv2d(2, 2, 3, padding=1), sn.ReLU())),
                         make_tensor(X4, 0)),
])
def test_table_prints_the_relative_errors_in_aligned_columns(report):
    report = report()
    text = str(report)
    lines = text.splitlines()
    assert lines[0].startswith("gradcheck ") and lines[1].split() == [
        "reference", "tensor", "shape", "rel.", "error", "tolerance", "result"]
    assert lines[-1] == ("ALL PASS" if report.passed else "FAILED")
    table = lines[1:2 + len(report.rows)]
    # every column starts at the same offset on every line, however long the names
    starts = [m.start() for m in re.finditer(r"(?<=  )\S", table[0].replace("rel. error", "rel._error"))]
    for row, line in zip(report.rows, table[1:]):
        shown = row.error_text()
        assert ERROR_TEXT.match(shown), shown
        if shown[0].isdigit() and shown != "0":
            assert float(shown) == pytest.approx(row.max_rel_err, rel=0.051)
        elif shown == "0":
            assert row.max_rel_err == 0
        assert line.endswith("PASS" if row.passed else "FAIL")
        assert line.startswith(row.reference) and f"  {row.name}  " in line
        cells = re.split(r"\s{2,}", line.strip())
        assert cells[-3:] == [shown, f"{row.tolerance:.0e}", "PASS" if row.passed else "FAIL"]
        assert line[starts[-1]:] in ("PASS", "FAIL") and line[starts[-1] - 2:starts[-1]] == "  "
    assert str(report) == text


def test_error_text_of_special_rows():
    row = sn.gradcheck(sn.Linear(3, 2), make_tensor((4, 3), 0)).rows[0]
    row.max_rel_err = 3.14159e-7
    assert row.error_text() == "3.1e-07"
    row.max_rel_err = float("inf")
    assert row.error_text() == "not finite"
    row.shape_ok = False
    assert row.error_text() == "bad shape"


def test_report_is_reproducible_and_leaves_the_module_alone():
    layer = sn.Linear(4, 3)
    x = make_tensor((5, 4), 0, dtype=torch.float32)
    weight = layer.weight.clone()
    first, second = sn.gradcheck(layer, x), sn.gradcheck(layer, x)
    assert [(r.max_abs_err, r.max_rel_err) for r in first.rows] == \
        [(r.max_abs_err, r.max_rel_err) for r in second.rows]
    assert torch.equal(layer.weight, weight) and layer.weight.grad is None
    assert layer.weight.dtype == torch.float32
