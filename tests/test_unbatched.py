"""Unbatched inputs, as torch accepts them: Linear on (in_features,), Flatten, Identity and the
element-wise activations on any rank (0-D included), MSELoss on any shape, MaxPool2d and
MaxUnpool2d on (C, H, W) (tests/test_pooling.py). Forward and input gradient against torch.nn,
float64, random upstream gradient."""
from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from strategies import shapes, tensors
from torch import nn
from torch.testing import assert_close

import scratchnet as sn

TOL = {"rtol": 1e-12, "atol": 1e-12}

LAYERS: dict[str, Callable[[], tuple[sn.Module, nn.Module]]] = {
    "Identity": lambda: (sn.Identity(), nn.Identity()),
    "ReLU": lambda: (sn.ReLU(), nn.ReLU()),
    "LeakyReLU": lambda: (sn.LeakyReLU(0.2), nn.LeakyReLU(0.2)),
    "Sigmoid": lambda: (sn.Sigmoid(), nn.Sigmoid()),
    "Tanh": lambda: (sn.Tanh(), nn.Tanh()),
    "Flatten": lambda: (sn.Flatten(), nn.Flatten()),
    "Flatten(0)": lambda: (sn.Flatten(0), nn.Flatten(0)),
}
MIN_RANK = {"Flatten": 2, "Flatten(0)": 1}


@pytest.mark.parametrize("name", LAYERS)
@given(data=st.data())
def test_layers_on_inputs_of_any_rank(name, data):
    layer, twin = LAYERS[name]()
    shape = data.draw(shapes(min_rank=MIN_RANK.get(name, 0), max_rank=3), label="shape")
    x = data.draw(tensors(shape), label="x")
    y = layer(x)
    g = data.draw(tensors(tuple(y.shape)), label="grad_output")
    xt = x.clone().requires_grad_(True)
    with torch.enable_grad():
        yt = twin(xt)
        yt.backward(g)
    assert_close(y, yt.detach(), **TOL)
    assert_close(layer.backward(g), xt.grad, **TOL)


@given(in_f=st.integers(1, 5), out_f=st.integers(1, 5), bias=st.booleans(), data=st.data())
def test_linear_on_one_vector(in_f, out_f, bias, data):
    """(in_features,) → (out_features,); weight and bias gradients as torch's."""
    layer = sn.Linear(in_f, out_f, bias, dtype=torch.float64)
    twin = nn.Linear(in_f, out_f, bias, dtype=torch.float64)
    twin.load_state_dict(layer.state_dict())
    x = data.draw(tensors((in_f,)), label="x")
    g = data.draw(tensors((out_f,)), label="grad_output")
    y = layer(x)
    xt = x.clone().requires_grad_(True)
    with torch.enable_grad():
        yt = twin(xt)
        yt.backward(g)
    assert y.shape == (out_f,)
    assert_close(y, yt.detach(), **TOL)
    assert_close(layer.backward(g), xt.grad, **TOL)
    for name, p in layer.named_parameters():
        assert_close(p.grad, getattr(twin, name).grad, **TOL)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(data=st.data())
def test_mse_loss_on_any_shape(reduction, data):
    shape = data.draw(shapes(min_rank=0, max_rank=2), label="shape")
    pred, target = data.draw(tensors(shape), label="pred"), data.draw(tensors(shape), label="t")
    crit = sn.MSELoss(reduction=reduction)
    loss = crit(pred, target)
    g = data.draw(tensors(tuple(loss.shape)), label="grad_output")
    pt = pred.clone().requires_grad_(True)
    with torch.enable_grad():
        expected = nn.MSELoss(reduction=reduction)(pt, target)
        expected.backward(g)
    assert_close(loss, expected.detach(), **TOL)
    assert_close(crit.backward(g), pt.grad, **TOL)
