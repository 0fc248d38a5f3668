"""Every layer against its torch.nn twin (same weights, torch autograd as the reference), float64.

Forward output, input gradient and every parameter gradient are compared for a random upstream
gradient, over Hypothesis-drawn shapes and hyper-parameters (see strategies.py).
"""
from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from strategies import (
    conv2d_configs,
    conv_transpose2d_configs,
    flatten_configs,
    impls,
    linear_configs,
    make_tensor,
    maxpool2d_configs,
    nearest_upsampling_configs,
    negative_slopes,
    seeds,
    shapes,
    tensors,
    upsampling_configs,
)
from torch import Tensor, nn
from torch.testing import assert_close

import scratchnet as sn

TOL = {"rtol": 1e-10, "atol": 1e-10}


def randomize(layer: sn.Module, data: st.DataObject) -> None:
    """Give the layer drawn weights (the default init would depend on the global RNG)."""
    layer.load_state_dict({name: data.draw(tensors(tuple(p.shape)), label=name)
                           for name, p in layer.named_parameters()})


def compare(layer: sn.Module, twin: nn.Module, x: Tensor, data: st.DataObject,
            twin_params: dict[str, Tensor] | None = None) -> None:
    """Forward and backward of `layer` and of `twin` (whose parameters `twin_params`, by
    scratchnet name, get the layer's values) agree; neither x nor the upstream gradient is
    modified in place."""
    twin_params = dict(twin.named_parameters()) if twin_params is None else twin_params
    own = dict(layer.named_parameters())
    assert list(own) == list(twin_params)
    with torch.no_grad():
        for name, p in own.items():
            twin_params[name].copy_(p)
    x_before = x.clone()
    y = layer(x)
    g = data.draw(tensors(tuple(y.shape)), label="grad_output")
    g_before = g.clone()
    grad_x = layer.backward(g)
    assert torch.equal(x, x_before) and torch.equal(g, g_before)
    with torch.enable_grad():
        xt = x.detach().clone().requires_grad_(True)
        yt = twin(xt)
        yt.backward(g)
    assert_close(y, yt.detach(), **TOL)
    assert_close(grad_x, xt.grad, **TOL)
    for name, p in own.items():
        expected = twin_params[name].grad
        assert p.grad is not None, f"no gradient for {name}"
        assert_close(p.grad, expected, **TOL, msg=lambda m, n=name: f"grad {n}: {m}")


@pytest.mark.parametrize("impl", impls)
@given(cfg=conv2d_configs(), data=st.data())
def test_conv2d(impl, cfg, data):
    layer = sn.Conv2d(*cfg.args, **cfg.kwargs, dtype=torch.float64)
    layer.impl = impl
    randomize(layer, data)
    twin = nn.Conv2d(*cfg.args, **cfg.kwargs, dtype=torch.float64)
    compare(layer, twin, data.draw(tensors(cfg.input_shape), label="x"), data)


@pytest.mark.parametrize("impl", impls)
@given(cfg=conv_transpose2d_configs(), data=st.data())
def test_conv_transpose2d(impl, cfg, data):
    layer = sn.ConvTranspose2d(*cfg.args, **cfg.kwargs, dtype=torch.float64)
    layer.impl = impl
    randomize(layer, data)
    twin = nn.ConvTranspose2d(*cfg.args, **cfg.kwargs, dtype=torch.float64)
    compare(layer, twin, data.draw(tensors(cfg.input_shape), label="x"), data)


@pytest.mark.parametrize("impl", impls)
@given(cfg=upsampling_configs(), data=st.data())
def test_upsampling(impl, cfg, data):
    layer = sn.Upsampling(*cfg.args, **cfg.kwargs, dtype=torch.float64)
    layer.impl = impl
    randomize(layer, data)
    conv_kwargs = {k: v for k, v in cfg.kwargs.items() if k != "scale_factor"}
    twin = nn.Sequential(nn.Upsample(scale_factor=cfg.kwargs["scale_factor"], mode="nearest"),
                         nn.Conv2d(*cfg.args, **conv_kwargs, dtype=torch.float64))
    params = {"weight": twin[1].weight} | ({"bias": twin[1].bias} if cfg.kwargs["bias"] else {})
    compare(layer, twin, data.draw(tensors(cfg.input_shape), label="x"), data, params)


@given(cfg=nearest_upsampling_configs(), data=st.data())
def test_nearest_upsampling(cfg, data):
    (scale,) = cfg.args
    compare(sn.NearestUpsampling(scale_factor=scale),
            nn.Upsample(scale_factor=scale, mode="nearest"),
            data.draw(tensors(cfg.input_shape), label="x"), data)


@given(cfg=linear_configs(), data=st.data())
def test_linear_with_leading_dims(cfg, data):
    layer = sn.Linear(*cfg.args, **cfg.kwargs, dtype=torch.float64)
    randomize(layer, data)
    twin = nn.Linear(*cfg.args, **cfg.kwargs, dtype=torch.float64)
    compare(layer, twin, data.draw(tensors(cfg.input_shape), label="x"), data)


@given(cfg=maxpool2d_configs(), data=st.data())
def test_maxpool2d_without_ties(cfg, data):
    x = data.draw(tensors(cfg.input_shape, distinct=True), label="x")
    compare(sn.MaxPool2d(*cfg.args), nn.MaxPool2d(*cfg.args), x, data)


ACTIVATIONS = {
    "ReLU": lambda slope: (sn.ReLU(), nn.ReLU()),
    "LeakyReLU": lambda slope: (sn.LeakyReLU(slope), nn.LeakyReLU(slope)),
    "Sigmoid": lambda slope: (sn.Sigmoid(), nn.Sigmoid()),
    "Tanh": lambda slope: (sn.Tanh(), nn.Tanh()),
}


@pytest.mark.parametrize("name", ACTIVATIONS)
@given(shape=shapes(), slope=negative_slopes, scale=st.sampled_from([1.0, 10.0]),
       data=st.data())
def test_activation(name, shape, slope, scale, data):
    """Any shape; the first element is exactly 0 to pin the convention at the kink."""
    layer, twin = ACTIVATIONS[name](slope)
    x = data.draw(tensors(shape), label="x") * scale
    x[(0,) * x.dim()] = 0.0
    compare(layer, twin, x, data)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sigmoid_saturates_without_overflow(dtype):
    x = torch.tensor([-1000.0, -100.0, -20.0, 0.0, 20.0, 100.0, 1000.0], dtype=dtype)
    layer = sn.Sigmoid()
    y = layer(x)
    grad = layer.backward(torch.ones_like(x))
    with torch.enable_grad():
        xt = x.clone().requires_grad_(True)
        torch.sigmoid(xt).sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(grad).all()
    tiny = torch.finfo(dtype).tiny
    assert_close(y, torch.sigmoid(x), rtol=1e-6, atol=tiny)
    assert_close(grad, xt.grad, rtol=1e-6, atol=tiny)
    assert y[-1] == 1 and y[0] == 0 and grad[-1] == 0


@given(cfg=flatten_configs(), data=st.data())
def test_flatten(cfg, data):
    compare(sn.Flatten(*cfg.args), nn.Flatten(*cfg.args),
            data.draw(tensors(cfg.input_shape), label="x"), data)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(shape=shapes(), seed=seeds)
def test_mse_loss_and_gradient(reduction, shape, seed):
    prediction = make_tensor(shape, seed)
    target = make_tensor(shape, seed + 1, "transposed")
    crit = sn.MSELoss(reduction)
    loss = crit(prediction, target)
    upstream = make_tensor(tuple(loss.shape), seed + 2)
    grad = crit.backward(upstream)
    with torch.enable_grad():
        pt = prediction.clone().requires_grad_(True)
        expected = nn.MSELoss(reduction=reduction)(pt, target)
        expected.backward(upstream)
    assert_close(loss, expected.detach(), **TOL)
    assert_close(grad, pt.grad, **TOL)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_default_backward_is_the_gradient_of_the_loss(reduction):
    prediction, target = make_tensor((3, 2, 5), 0), make_tensor((3, 2, 5), 1)
    crit = sn.MSELoss(reduction)
    crit(prediction, target)
    with torch.enable_grad():
        pt = prediction.clone().requires_grad_(True)
        nn.MSELoss(reduction=reduction)(pt, target).backward()
    assert_close(crit.backward(), pt.grad, **TOL)


def container_model(c_in: int, h: int, w: int) -> sn.Sequential:
    """Every container and most layers in one model: x: (N, c_in, h, w) → (N, 3)."""
    return sn.Sequential(
        sn.Conv2d(c_in, 4, 3, padding=1),
        sn.LeakyReLU(0.1),
        sn.Residual(sn.Sequential(sn.Conv2d(4, 4, (3, 1), padding=(1, 0)), sn.Tanh())),
        sn.Concat(sn.Conv2d(4, 2, 1),
                  sn.Sequential(sn.MaxPool2d(3, stride=1, padding=1), sn.Sigmoid()),
                  sn.Identity()),
        sn.ConvTranspose2d(10, 3, 2, stride=2),
        sn.Upsampling(3, 2, 3, scale_factor=(1, 2), padding=1),
        sn.ReLU(),
        sn.Flatten(),
        sn.Linear(2 * (2 * h) * (4 * w), 3),
    ).double()


@pytest.mark.parametrize("impl", impls)
@given(c_in=st.integers(2, 3), hw=st.tuples(st.integers(2, 4), st.integers(2, 4))
       .filter(lambda hw: hw[0] != hw[1]), n=st.integers(2, 3), data=st.data())
def test_containers_against_interop_twins(impl, c_in, hw, n, data):
    model = container_model(c_in, *hw)
    for module in model.modules():
        if "impl" in vars(module):
            module.impl = impl
    randomize(model, data)
    twin = sn.to_torch(model)
    assert [type(m).__name__ for m in twin.children()][2:4] == ["TorchResidual", "TorchConcat"]
    compare(model, twin, data.draw(tensors((n, c_in, *hw)), label="x"), data)


def test_upsampling_backward_on_non_square_input_with_pair_scale():
    """The specific bug class: a backward that assumes H == W or s_h == s_w."""
    layer = sn.Upsampling(2, 3, (3, 2), scale_factor=(3, 2), padding=(1, 0)).double()
    x = make_tensor((2, 2, 2, 5), 7)
    y = layer(x)
    assert y.shape == (2, 3, 6, 9)
    g = make_tensor(tuple(y.shape), 8)
    grad_x = layer.backward(g)
    with torch.enable_grad():
        xt = x.clone().requires_grad_(True)
        weight = layer.weight.clone().requires_grad_(True)
        up = nn.functional.interpolate(xt, scale_factor=(3, 2), mode="nearest")
        nn.functional.conv2d(up, weight, layer.bias, padding=(1, 0)).backward(g)
    assert_close(grad_x, xt.grad, **TOL)
    assert_close(layer.weight.grad, weight.grad, **TOL)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_on_an_empty_batch(reduction):
    """N = 0: torch's loss (nan for 'mean', 0 for 'sum', empty for 'none'), an empty gradient."""
    prediction = torch.zeros(0, 3, dtype=torch.float64)
    target = torch.ones_like(prediction)
    crit = sn.MSELoss(reduction)
    loss = crit(prediction, target)
    grad = crit.backward(torch.ones_like(loss))
    with torch.enable_grad():
        pt = prediction.clone().requires_grad_(True)
        expected = nn.MSELoss(reduction=reduction)(pt, target)
        expected.backward(torch.ones_like(expected))
    assert_close(loss, expected.detach(), equal_nan=True)
    assert_close(grad, pt.grad)
    if reduction != "none":
        crit(prediction, target)
        assert_close(crit.backward(), pt.grad)


EMPTY_BATCH = {
    "Conv2d": (lambda: sn.Conv2d(3, 4, 3, padding=1), (0, 3, 5, 6)),
    "Conv2d groups": (lambda: sn.Conv2d(4, 6, 3, stride=2, groups=2), (0, 4, 5, 6)),
    "ConvTranspose2d": (lambda: sn.ConvTranspose2d(4, 6, 3, stride=2, groups=2), (0, 4, 5, 6)),
    "Upsampling": (lambda: sn.Upsampling(3, 4, 3, padding=1), (0, 3, 5, 6)),
    "Upsampling strided": (lambda: sn.Upsampling(3, 4, 3, stride=2), (0, 3, 5, 6)),
    "NearestUpsampling": (lambda: sn.NearestUpsampling(scale_factor=(2, 3)), (0, 3, 5, 6)),
    "MaxPool2d": (lambda: sn.MaxPool2d(3, stride=2, padding=1), (0, 3, 5, 6)),
    "Linear": (lambda: sn.Linear(5, 4), (0, 2, 5)),
    "ReLU": (lambda: sn.ReLU(), (0, 5)),
    "LeakyReLU": (lambda: sn.LeakyReLU(0.1), (0, 5)),
    "Sigmoid": (lambda: sn.Sigmoid(), (0, 5)),
    "Tanh": (lambda: sn.Tanh(), (0, 5)),
    "Flatten": (lambda: sn.Flatten(), (0, 3, 4)),
    "Identity": (lambda: sn.Identity(), (0, 3, 4)),
    "Sequential": (lambda: sn.Sequential(sn.Conv2d(3, 2, 1), sn.Flatten()), (0, 3, 4, 5)),
    "Residual": (lambda: sn.Residual(sn.Conv2d(3, 3, 3, padding=1)), (0, 3, 4, 5)),
    "Concat": (lambda: sn.Concat(sn.Conv2d(3, 1, 1), sn.MaxPool2d(3, 1, 1)), (0, 3, 4, 5)),
}


def test_empty_batch_covers_every_exported_layer():
    exported = {v for v in vars(sn).values() if isinstance(v, type) and issubclass(v, sn.Module)}
    assert {type(make()) for make, _ in EMPTY_BATCH.values()} == \
        exported - {sn.Module, sn.MSELoss, sn.MaxUnpool2d}           # unpooling: test_pooling.py


@pytest.mark.parametrize("impl", impls)
@pytest.mark.parametrize("name", EMPTY_BATCH)
def test_empty_batch(name, impl):
    """N = 0: torch's output shape, an empty input gradient and torch's (zero) parameter
    gradients, for every layer and impl."""
    make, shape = EMPTY_BATCH[name]
    layer = make().double()
    for m in layer.modules():
        if "impl" in vars(m):
            m.impl = impl
    twin = sn.to_torch(layer)
    x = torch.zeros(shape, dtype=torch.float64)
    y = layer(x)
    grad_x = layer.backward(torch.ones_like(y))
    with torch.enable_grad():
        xt = x.clone().requires_grad_(True)
        yt = twin(xt)
        yt.backward(torch.ones_like(yt))
    assert y.shape == yt.shape and grad_x.shape == x.shape
    twin_params = dict(twin.named_parameters())
    for param_name, p in layer.named_parameters():
        assert_close(p.grad, twin_params[param_name].grad, msg=param_name)
