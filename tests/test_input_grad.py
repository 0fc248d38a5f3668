"""`needs_input_grad`: a module whose input needs no gradient (images fed to the first layer)
returns None from backward, and Conv2d's fast paths skip computing it, with the parameter
gradients unchanged; Sequential passes the flag to its first module; `fit` and the benchmark's
trainer use it, as torch's autograd skips inputs that do not require grad."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from strategies import make_tensor, seeds
from torch.testing import assert_close

import scratchnet as sn
from scratchnet import conv, winograd
from scratchnet.benchmark.trainers import ScratchnetTrainer
from scratchnet.models import build_model
from scratchnet.winograd import WinogradSaved

CONVS = {                                                  # name: (layer, takes Winograd)
    "winograd 3×3": (lambda: sn.Conv2d(3, 4, 3, padding=1), True),
    "channels-last 3×3": (lambda: sn.Conv2d(3, 4, 3, padding=(0, 1), dilation=(1, 2)), False),
    "stride-2 2×2": (lambda: sn.Conv2d(3, 4, 2, stride=2), False),
    "grouped": (lambda: sn.Conv2d(4, 6, 3, stride=(1, 2), groups=2, bias=False), False),
    "reflect padding": (lambda: sn.Conv2d(3, 4, 3, padding=2, padding_mode="reflect"), True),
    "reference": (lambda: sn.Conv2d(3, 4, 3, padding=1), False),
}


@contextmanager
def not_computing_input_grads(fast: bool) -> Iterator[None]:
    """The fast paths' input-gradient steps raise inside (a no-op for the reference impl)."""
    if not fast:
        yield
        return
    refuse = mock.Mock(side_effect=AssertionError("the input gradient was computed"))
    with mock.patch.object(conv, "input_gradient_as_convolution", refuse), \
            mock.patch.object(conv, "col2im", refuse), \
            mock.patch.object(winograd, "input_transform_adjoint", refuse):
        yield


def parameter_grads(layer: sn.Module, x: torch.Tensor, g: torch.Tensor) -> tuple:
    """What backward returns and the parameter gradients it accumulated."""
    layer.zero_grad()
    layer(x)
    grad_input = layer.backward(g)
    return grad_input, [p.grad.clone() for p in layer.parameters()]


@pytest.mark.parametrize("name", CONVS)
@given(seed=seeds, batch=st.integers(1, 3))
def test_conv2d_without_input_grad_returns_none_and_the_same_parameter_grads(name, seed, batch):
    make, takes_winograd = CONVS[name]
    layer = make().double()
    if name == "reference":
        layer.impl = "reference"
    x = make_tensor((batch, layer.in_channels, 6, 7), seed, "channels_last")
    with mock.patch.object(winograd, "MIN_ROWS", 1):
        y = layer(x)
        assert isinstance(layer.saved["cols"], WinogradSaved) == takes_winograd
        g = make_tensor(tuple(y.shape), seed + 1)
        grad_input, full = parameter_grads(layer, x, g)
        layer.needs_input_grad = False
        with not_computing_input_grads(fast=layer.impl == "fast"):
            skipped, partial = parameter_grads(layer, x, g)
    assert grad_input is not None and skipped is None
    for a, b in zip(full, partial):
        assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_unbatched_input_without_input_grad():
    layer = sn.Conv2d(2, 3, 3, padding=1)
    layer.needs_input_grad = False
    y = layer(torch.randn(2, 5, 4))
    assert layer.backward(torch.ones_like(y)) is None
    assert layer.weight.grad.shape == layer.weight.shape


@pytest.mark.parametrize("layer", [sn.Linear(3, 2), sn.ReLU(), sn.Sigmoid()],
                         ids=["Linear", "ReLU", "Sigmoid"])
def test_other_layers_return_none_and_keep_their_parameter_grads(layer):
    x = torch.randn(4, 3)
    y = layer(x)
    g = torch.randn_like(y)
    grad_input, full = parameter_grads(layer, x, g)
    layer.needs_input_grad = False
    skipped, partial = parameter_grads(layer, x, g)
    assert grad_input is not None and skipped is None
    assert all(torch.equal(a, b) for a, b in zip(full, partial))


def test_sequential_passes_the_flag_to_its_first_module():
    inner = sn.Sequential(sn.Conv2d(3, 4, 1), sn.ReLU())
    model = sn.Sequential(inner, sn.Conv2d(4, 2, 1))
    assert model.needs_input_grad
    model.needs_input_grad = False
    assert not inner[0].needs_input_grad and not model.needs_input_grad
    assert model[1].needs_input_grad and inner[1].needs_input_grad
    y = model(torch.randn(2, 3, 4, 4))
    assert model.backward(torch.ones_like(y)) is None
    assert all(p.grad is not None for p in model.parameters())
    model.needs_input_grad = True
    y = model(torch.randn(2, 3, 4, 4))
    assert model.backward(torch.ones_like(y)).shape == (2, 3, 4, 4)


@pytest.mark.parametrize("module", [sn.Conv2d(1, 1, 1), sn.Sequential(sn.ReLU())],
                         ids=["Conv2d", "Sequential"])
def test_needs_input_grad_takes_a_bool(module):
    with pytest.raises(TypeError, match="needs_input_grad must be True or False, got 'no'"):
        module.needs_input_grad = "no"
    assert module.needs_input_grad


def test_an_empty_sequential_has_no_first_module_to_skip():
    assert sn.Sequential().needs_input_grad
    with pytest.raises(ValueError, match="empty chain"):
        sn.Sequential().needs_input_grad = False


class Doubled(sn.LeakyReLU):
    """A subclass whose backward uses its parent's result."""

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        return 2 * super().backward(grad_output)


def test_a_module_calling_its_parents_backward_gets_the_gradient_inside():
    """The inner call (LeakyReLU's backward, from Doubled's) still returns the gradient; only the
    outermost call drops it."""
    layer = Doubled(0.1)
    y = layer(torch.tensor([[-1.0, 2.0]]))
    assert torch.equal(layer.backward(torch.ones_like(y)), torch.tensor([[0.2, 2.0]]))
    layer.needs_input_grad = False
    y = layer(torch.tensor([[-1.0, 2.0]]))
    assert layer.backward(torch.ones_like(y)) is None


def test_gradcheck_checks_the_input_gradient_of_a_module_that_skips_it():
    net = sn.Sequential(sn.Conv2d(3, 4, 3, padding=1), sn.ReLU())
    net.needs_input_grad = False
    report = sn.gradcheck(net, torch.randn(2, 3, 5, 4))
    assert report.passed and any(row.name == "grad input" for row in report.rows)
    assert not net.needs_input_grad


def test_fit_skips_the_images_gradient_and_restores_the_flag(monkeypatch):
    model = build_model("course", channels=4)
    first = model[0]
    calls = []
    backward = type(first).backward

    def spy(self, grad_output):
        if self is first:
            calls.append(self.needs_input_grad)
        return backward(self, grad_output)

    monkeypatch.setattr(type(first), "backward", spy)
    pairs = (torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8),) * 2
    sn.fit(model, pairs, epochs=1, batch_size=2, progress=False, device="cpu")
    assert calls and not any(calls)
    assert model.needs_input_grad


def test_the_benchmark_trainer_skips_the_images_gradient_as_torch_does():
    trainer = ScratchnetTrainer(build_model("unet", channels=4, growth=2))
    assert not trainer.model.needs_input_grad
    x = torch.rand(2, 3, 16, 16)
    trainer.step(x, x)
    assert all(p.grad is not None for p in trainer.model.parameters())
