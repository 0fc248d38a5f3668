"""The Module API against torch.nn.Module: registration, traversal order and names, gradient
accumulation, zero_grad, train/eval, state_dict, to(), repr and no_grad."""
from __future__ import annotations

import copy

import pytest
import torch
from strategies import make_tensor
from torch import nn
from torch.testing import assert_close

import scratchnet as sn


def twin_architectures() -> tuple[sn.Module, nn.Module]:
    """The same architecture in both libraries, with nesting and a bias-free layer."""
    ours = sn.Sequential(
        sn.Conv2d(3, 8, 3, padding=1), sn.ReLU(),
        sn.Sequential(sn.Conv2d(8, 8, (3, 1), bias=False), sn.LeakyReLU(0.2),
                      sn.ConvTranspose2d(8, 4, 2, stride=2)),
        sn.Flatten(), sn.Linear(16, 5), sn.Sigmoid(), sn.Linear(5, 2, bias=False))
    theirs = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        nn.Sequential(nn.Conv2d(8, 8, (3, 1), bias=False), nn.LeakyReLU(0.2),
                      nn.ConvTranspose2d(8, 4, 2, stride=2)),
        nn.Flatten(), nn.Linear(16, 5), nn.Sigmoid(), nn.Linear(5, 2, bias=False))
    return ours, theirs


def test_parameter_names_order_and_shapes_equal_torch():
    ours, theirs = twin_architectures()
    assert [(n, p.shape) for n, p in ours.named_parameters()] == \
        [(n, p.shape) for n, p in theirs.named_parameters()]
    assert [p.shape for p in ours.parameters()] == [p.shape for p in theirs.parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert len(list(ours.children())) == len(list(theirs.children()))


def test_shared_parameter_is_listed_once():
    layer = sn.Linear(3, 3)
    model = sn.Sequential(layer, sn.ReLU(), layer)
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias"]


ACCUMULATING = {
    "Conv2d": lambda: sn.Conv2d(2, 3, 3, stride=(1, 2), padding=1),
    "Conv2d reference": lambda: sn.Conv2d(2, 4, 2, groups=2),
    "ConvTranspose2d": lambda: sn.ConvTranspose2d(2, 3, 3, stride=2),
    "ConvTranspose2d reference": lambda: sn.ConvTranspose2d(2, 4, (2, 3), groups=2),
    "Upsampling": lambda: sn.Upsampling(2, 3, 3, scale_factor=(2, 3), padding=1),
    "Upsampling reference": lambda: sn.Upsampling(2, 3, 3, padding=1),
    "Linear": lambda: sn.Linear(5, 3),
    "Sequential": lambda: sn.Sequential(sn.Conv2d(2, 3, 1), sn.Tanh(), sn.Conv2d(3, 2, 1)),
    "Residual": lambda: sn.Residual(sn.Conv2d(2, 2, 3, padding=1)),
    "Concat": lambda: sn.Concat(sn.Conv2d(2, 1, 1), sn.Conv2d(2, 3, 3, padding=1)),
}


@pytest.mark.parametrize("name", ACCUMULATING)
def test_two_backward_calls_accumulate(name):
    layer = ACCUMULATING[name]().double()
    if name.endswith("reference"):
        for module in layer.modules():
            module.impl = "reference"
    x1, x2 = make_tensor((2, 2, 4, 5), 1), make_tensor((2, 2, 4, 5), 2)

    def grads_of(x: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
        single = copy.deepcopy(layer)
        y = single(x)
        single.backward(make_tensor(tuple(y.shape), seed))
        return {n: p.grad for n, p in single.named_parameters()}

    expected = {n: g1 + g2 for (n, g1), g2 in zip(grads_of(x1, 3).items(),
                                                  grads_of(x2, 4).values())}
    layer.backward(make_tensor(tuple(layer(x1).shape), 3))
    layer.backward(make_tensor(tuple(layer(x2).shape), 4))
    for n, p in layer.named_parameters():
        assert_close(p.grad, expected[n], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad(set_to_none):
    model = sn.Sequential(sn.Linear(4, 3), sn.Tanh(), sn.Linear(3, 2))
    y = model(make_tensor((5, 4), 0, dtype=torch.float32))
    model.backward(torch.ones_like(y))
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    model.zero_grad(set_to_none=set_to_none)
    for p, old in zip(model.parameters(), grads):
        if set_to_none:
            assert p.grad is None
        else:
            assert p.grad is old and not p.grad.any()


def test_optimizer_zero_grad_matches_module_zero_grad():
    model = sn.Linear(3, 2)
    opt = sn.SGD(model.parameters(), lr=0.1)
    model(torch.randn(4, 3))
    model.backward(torch.ones(4, 2))
    opt.zero_grad(set_to_none=False)
    assert not model.weight.grad.any()
    opt.zero_grad()
    assert model.weight.grad is None


def test_unknown_attribute_raises():
    layer = sn.Conv2d(1, 1, 1)
    with pytest.raises(AttributeError, match="'Conv2d' object has no attribute 'wieght'"):
        layer.wieght  # noqa: B018
    assert not hasattr(sn.Sequential(), "training_mode")


def test_train_and_eval_propagate_and_reject_non_bools():
    model = sn.Sequential(sn.Linear(2, 2), sn.Sequential(sn.ReLU()))
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    for bad in ("yes", 0, None):
        with pytest.raises(TypeError, match="expects a bool"):
            model.train(bad)
    assert all(m.training for m in model.modules())


def test_assignment_registers_and_replaces():
    m = sn.Module()
    m.block = 1
    m.block = sn.ReLU()
    assert isinstance(m.block, sn.ReLU) and [n for n, _ in m.named_children()] == ["block"]
    with pytest.raises(TypeError, match="not a scratchnet Module"):
        m.block = torch.zeros(1)
    m.block = None
    assert m.block is None and list(m.children()) == []
    m.register_parameter("weight", torch.zeros(2))
    with pytest.raises(TypeError, match="must be a Tensor"):
        m.weight = [1.0, 2.0]
    with pytest.raises(KeyError, match="already exists"):
        m.register_parameter("training", torch.zeros(1))
    del m.weight
    assert [n for n, _ in m.named_parameters()] == []


REPR_TWINS = [
    (lambda: sn.Conv2d(3, 8, 3), lambda: nn.Conv2d(3, 8, 3)),
    (lambda: sn.Conv2d(4, 8, (3, 2), stride=2, padding=(1, 0), dilation=2, groups=2, bias=False),
     lambda: nn.Conv2d(4, 8, (3, 2), stride=2, padding=(1, 0), dilation=2, groups=2, bias=False)),
    (lambda: sn.ConvTranspose2d(2, 4, 3, stride=2, output_padding=1, dilation=2),
     lambda: nn.ConvTranspose2d(2, 4, 3, stride=2, output_padding=1, dilation=2)),
    (lambda: sn.TransposeConv2d(6, 3, 2, groups=3, bias=False),
     lambda: nn.ConvTranspose2d(6, 3, 2, groups=3, bias=False)),
    (lambda: sn.Linear(3, 4), lambda: nn.Linear(3, 4)),
    (lambda: sn.Linear(3, 4, bias=False), lambda: nn.Linear(3, 4, bias=False)),
    (lambda: twin_architectures()[0], lambda: twin_architectures()[1]),
    (lambda: sn.Sequential(sn.Tanh(), sn.Identity(), sn.Flatten(0, 2)),
     lambda: nn.Sequential(nn.Tanh(), nn.Identity(), nn.Flatten(0, 2))),
]


@pytest.mark.parametrize("ours, theirs", REPR_TWINS)
def test_repr_equals_torch(ours, theirs):
    assert repr(ours()) == repr(theirs())


def test_no_grad_keeps_nothing_and_backward_raises():
    model = sn.Sequential(sn.Conv2d(1, 2, 3), sn.ReLU(), sn.Flatten(), sn.Linear(18, 1))
    x = torch.randn(2, 1, 5, 5)
    model(x)
    with sn.no_grad():
        y = model(x)
        assert all(m._ctx is None for m in model.modules())
    with pytest.raises(RuntimeError, match=r"Linear\(in_features=18.*no_grad"):
        model.backward(torch.ones_like(y))
    model.backward(torch.ones_like(model(x)))
    assert model[0].weight.grad is not None


def test_no_grad_restores_on_error():
    with pytest.raises(ValueError), sn.no_grad():
        raise ValueError
    layer = sn.Tanh()
    layer(torch.zeros(2))
    layer.backward(torch.ones(2))


def test_state_dict_is_the_live_parameters_and_load_copies_in_place():
    model = sn.Sequential(sn.Conv2d(2, 3, 3), sn.Linear(3, 4))
    params = list(model.parameters())
    state = model.state_dict()
    assert all(v is p for v, p in zip(state.values(), params))
    other = sn.Sequential(sn.Conv2d(2, 3, 3), sn.Linear(3, 4))
    result = model.load_state_dict(other.state_dict())
    assert tuple(result) == ([], [])
    assert all(a is b for a, b in zip(model.parameters(), params))
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), other.parameters()))
    assert all(a is not b for a, b in zip(model.parameters(), other.parameters()))


def test_load_state_dict_strict_errors_and_non_strict_loading():
    model = sn.Sequential(sn.Linear(2, 3), sn.Linear(3, 1))
    good = {k: v.clone() + 1 for k, v in model.state_dict().items()}
    missing = {k: v for k, v in good.items() if k != "1.bias"}
    with pytest.raises(RuntimeError, match=r"Sequential.*missing keys \['1.bias'\]"):
        model.load_state_dict(missing)
    with pytest.raises(RuntimeError, match=r"unexpected keys \['2.weight'\]"):
        model.load_state_dict({**good, "2.weight": torch.zeros(1)})
    with pytest.raises(RuntimeError, match=r"size mismatch for 0.weight.*\(3, 4\).*\(3, 2\)"):
        model.load_state_dict({**good, "0.weight": torch.zeros(3, 4)})
    with pytest.raises(RuntimeError, match="size mismatch"):
        model.load_state_dict({"0.weight": torch.zeros(3, 4)}, strict=False)
    before = model[1].bias.clone()
    result = model.load_state_dict({**missing, "extra": torch.zeros(1)}, strict=False)
    assert tuple(result) == (["1.bias"], ["extra"])
    assert torch.equal(model[0].weight, good["0.weight"]) and torch.equal(model[1].bias, before)


def test_to_changes_dtype_in_place_with_gradients():
    model = sn.Sequential(sn.Conv2d(1, 2, 3), sn.Flatten(), sn.Linear(2, 1))
    params = list(model.parameters())
    y = model(torch.randn(1, 1, 3, 3))
    model.backward(torch.ones_like(y))
    assert model.double() is model
    assert all(p is q and p.dtype == torch.float64 and p.grad.dtype == torch.float64
               for p, q in zip(model.parameters(), params))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        model.backward(torch.ones_like(y))
    assert model(torch.randn(1, 1, 3, 3, dtype=torch.float64)).dtype == torch.float64
    model.float()
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert model.cpu() is model


def test_factory_kwargs():
    for layer in (sn.Conv2d(2, 3, 3, dtype=torch.float64), sn.Linear(2, 3, dtype=torch.float64),
                  sn.ConvTranspose2d(2, 3, 3, dtype=torch.float64, device="cpu"),
                  sn.Upsampling(2, 3, 3, dtype=torch.float64)):
        assert all(p.dtype == torch.float64 for p in layer.parameters())
