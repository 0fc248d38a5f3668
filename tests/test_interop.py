"""`to_torch` / `from_torch`: same structure, same state_dict keys, same weights, same outputs."""
from __future__ import annotations

import pytest
import torch
from strategies import make_tensor
from torch import nn
from torch.testing import assert_close

import scratchnet as sn
from scratchnet.interop import TorchConcat, TorchResidual, TorchUpsampling

X = (2, 2, 3, 4)


def every_layer() -> sn.Sequential:
    """Every scratchnet layer and container: x: (N, 2, 3, 4) → (N, 3)."""
    return sn.Sequential(
        sn.Conv2d(2, 4, 3, padding=1),
        sn.ReLU(),
        sn.Residual(sn.Sequential(sn.Conv2d(4, 4, 1), sn.Tanh())),
        sn.Concat(sn.Identity(), sn.Sequential(sn.MaxPool2d(3, 1, 1), sn.Sigmoid())),
        sn.ConvTranspose2d(8, 3, 2, stride=2),
        sn.NearestUpsampling((1, 2)),
        sn.Upsampling(3, 2, 3, padding=1),
        sn.LeakyReLU(0.1),
        sn.Flatten(),
        sn.Linear(2 * 12 * 32, 3),
    )


def every_layer_in_torch() -> nn.Sequential:
    """The same architecture written by hand with torch.nn and interop's three twin modules."""
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.ReLU(),
        TorchResidual(nn.Sequential(nn.Conv2d(4, 4, 1), nn.Tanh())),
        TorchConcat(nn.Identity(), nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Sigmoid())),
        nn.ConvTranspose2d(8, 3, 2, stride=2),
        nn.Upsample(scale_factor=(1, 2)),
        TorchUpsampling(3, 2, (3, 3), (2, 2), (1, 1), (1, 1), (1, 1)),
        nn.LeakyReLU(0.1),
        nn.Flatten(),
        nn.Linear(2 * 12 * 32, 3),
    )


def test_to_torch_has_the_same_keys_weights_and_outputs():
    model = every_layer().double()
    twin = sn.to_torch(model)
    assert list(twin.state_dict()) == list(model.state_dict())
    for (name, p), q in zip(model.state_dict().items(), twin.state_dict().values()):
        assert torch.equal(p, q) and q.dtype == torch.float64, name
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in twin.parameters())
    x = make_tensor(X, 0)
    with torch.no_grad():
        assert_close(model(x), twin(x), rtol=1e-10, atol=1e-10)


def test_round_trip_through_a_plain_torch_load_state_dict_is_exact():
    """scratchnet → state_dict → a hand-written torch model → from_torch: identical outputs."""
    torch.manual_seed(0)
    model = every_layer()
    torch.manual_seed(1)
    torch_model = every_layer_in_torch()
    torch_model.load_state_dict(model.state_dict())
    back = sn.from_torch(torch_model)
    assert repr(back) == repr(model)
    assert all(p is not q and torch.equal(p, q)
               for p, q in zip(back.parameters(), model.parameters()))
    x = make_tensor(X, 1, dtype=torch.float32)
    assert torch.equal(back(x), model(x))
    with torch.no_grad():
        assert_close(torch_model(x), model(x), rtol=1e-5, atol=1e-6)


def test_from_torch_copies_and_keeps_dtype():
    torch_model = every_layer_in_torch().double()
    model = sn.from_torch(torch_model)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    with torch.no_grad():
        torch_model[0].weight.add_(1)
    assert not torch.equal(model[0].weight, torch_model[0].weight)
    twin = sn.to_torch(model)
    model[0].weight.add_(1)
    assert not torch.equal(model[0].weight, twin[0].weight)


def test_loss_and_parameter_free_layers_map_both_ways():
    crit = sn.from_torch(sn.to_torch(sn.MSELoss("sum")))
    assert isinstance(crit, sn.MSELoss) and crit.reduction == "sum"
    relu = sn.from_torch(nn.ReLU())
    assert isinstance(relu, sn.ReLU)
    up = sn.from_torch(nn.Upsample(scale_factor=3))
    assert up.scale_factor == (3, 3)


class Custom(sn.Module):
    def forward(self, x):
        return x


@pytest.mark.parametrize("convert, model, fragment", [
    (sn.to_torch, Custom(), "no counterpart for Custom"),
    (sn.to_torch, sn.Sequential(sn.ReLU(), Custom()), "no counterpart for Custom"),
    (sn.from_torch, nn.BatchNorm2d(3), "no counterpart for BatchNorm2d"),
    (sn.from_torch, nn.Conv2d(3, 3, 3, padding="same"), "numeric zero padding"),
    (sn.from_torch, nn.Conv2d(3, 3, 3, padding_mode="reflect"), "numeric zero padding"),
    (sn.from_torch, nn.Upsample(scale_factor=2, mode="bilinear"), "mode='nearest'"),
    (sn.from_torch, nn.MaxPool2d(2, ceil_mode=True), "ceil_mode"),
    (sn.from_torch, nn.MaxPool2d(3, dilation=2), "dilation"),
])
def test_unsupported_modules_raise_type_error(convert, model, fragment):
    with pytest.raises(TypeError, match=fragment):
        convert(model)
