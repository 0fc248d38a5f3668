"""`to_torch` / `from_torch`: same structure, same state_dict keys, same weights, same outputs."""
from __future__ import annotations

import pytest
import torch
from strategies import make_tensor
from torch import nn
from torch.nn.utils import parametrize
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
        sn.NearestUpsampling(scale_factor=(1, 2)),
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
    assert up.scale_factor == 3.0 and up.size is None


class Custom(sn.Module):
    def forward(self, x):
        return x


@pytest.mark.parametrize("convert, model, fragment", [
    (sn.to_torch, Custom(), "no counterpart for Custom"),
    (sn.to_torch, sn.Sequential(sn.ReLU(), Custom()), "no counterpart for Custom"),
    (sn.from_torch, nn.BatchNorm2d(3), "no counterpart for BatchNorm2d"),
])
def test_unsupported_modules_raise_type_error(convert, model, fragment):
    with pytest.raises(TypeError, match=fragment):
        convert(model)


class DoubledConv(nn.Conv2d):
    def forward(self, x):
        return 2 * super().forward(x)


class NamedConv(nn.Conv2d):
    """A subclass that keeps Conv2d's forward: converted as a Conv2d."""


def hooked() -> nn.Module:
    conv = nn.Conv2d(2, 2, 3)
    conv.register_forward_hook(lambda module, inputs, output: output * 2)
    return conv


def parametrized() -> nn.Module:
    linear = nn.Linear(2, 2)
    parametrize.register_parametrization(linear, "weight", nn.Identity())
    return linear


def half_frozen() -> nn.Module:
    linear = nn.Linear(2, 2)
    linear.bias.requires_grad_(False)
    return linear


REFUSED = {
    "Upsample nearest-exact": (lambda: nn.Upsample(scale_factor=3, mode="nearest-exact"),
                               ("from_torch: Upsample(scale_factor=3.0, mode='nearest-exact'): "
                                "mode='nearest-exact' is not supported; scratchnet."
                                "NearestUpsampling is mode='nearest'")),
    "Upsample 3-D scales": (lambda: nn.Upsample(scale_factor=(2, 2, 2)),
                            "scale_factor=(2.0, 2.0, 2.0) is not supported"),
    "Upsample bilinear": (lambda: nn.Upsample(scale_factor=2, mode="bilinear",
                                              align_corners=True),
                          ("mode='bilinear' is not supported; scratchnet.NearestUpsampling is "
                           "mode='nearest'")),
    "UpsamplingBilinear2d": (lambda: nn.UpsamplingBilinear2d(scale_factor=2),
                             ("UpsamplingBilinear2d(scale_factor=2.0, mode='bilinear'): "
                              "mode='bilinear'")),
    "Upsample bilinear, non-integer scale": (
        lambda: nn.Upsample(scale_factor=2.5, mode="bilinear"),
        ("from_torch: Upsample(scale_factor=2.5, mode='bilinear'): mode='bilinear' is not "
         "supported; scratchnet.NearestUpsampling is mode='nearest'")),
    "Upsample nearest-exact to a size": (
        lambda: nn.Upsample(size=(4, 6), mode="nearest-exact"),
        ("Upsample(size=(4, 6), mode='nearest-exact'): mode='nearest-exact' is not "
         "supported; scratchnet.NearestUpsampling is mode='nearest' (torch's "
         "UpsamplingNearest2d), which copies other pixels")),
    "Upsample area": (lambda: nn.Upsample(size=3, mode="area"), "mode='area' is not supported"),
    "Upsample align_corners": (
        lambda: nn.Upsample(scale_factor=2, align_corners=True),
        ("align_corners=True is not supported; torch's mode='nearest' refuses it "
         "too: leave align_corners=None")),
    "Upsample neither": (
        lambda: nn.Upsample(),
        "size=None with scale_factor=None is not supported; give exactly one of them"),
    "Upsample both": (lambda: nn.Upsample(size=3, scale_factor=2),
                      "size=3 with scale_factor=2.0 is not supported"),
    "Upsample 3-D volume": (
        lambda: nn.Upsample(scale_factor=(2, 2, 2)),
        ("scale_factor=(2.0, 2.0, 2.0) is not supported; scratchnet.NearestUpsampling "
         "resizes (N, C, H, W) and (N, C, L) inputs")),
    "Upsample recompute with size": (
        lambda: nn.Upsample(size=4, recompute_scale_factor=True),
        "recompute_scale_factor=True with size=4 is not supported"),
    "Upsample negative scale": (
        lambda: nn.Upsample(scale_factor=-2),
        ("scale_factor=-2.0 is not supported; sizes must be whole numbers ≥ 1 "
         "and scale factors finite")),
    "subclass with its own forward": (lambda: DoubledConv(2, 2, 3),
                                      ("from_torch: DoubledConv overrides Conv2d.forward, which "
                                       "from_torch cannot reproduce")),
    "forward hook": (hooked, ("a module with hooks (forward_hooks) is not supported; scratchnet "
                              "runs no hooks")),
    "parametrization": (parametrized, ("ParametrizedLinear(in_features=2, out_features=2, "
                                       "bias=True): parametrized weight is not supported; "
                                       "convert after torch.nn.utils.parametrize")),
    "lazy": (lambda: nn.LazyLinear(3), ("a lazy module with uninitialized parameters is not "
                                        "supported; run one forward first")),
    "partly frozen": (half_frozen, ("requires_grad=False on some of its parameters is not "
                                    "supported; scratchnet freezes whole modules")),
    "inside a Sequential": (lambda: nn.Sequential(nn.ReLU(), nn.Upsample(scale_factor=1.5,
                                                                         mode="bicubic")),
                            "Upsample(scale_factor=1.5, mode='bicubic'): mode='bicubic'"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_from_torch_refuses_what_it_cannot_reproduce_in_one_line(name):
    make, fragment = REFUSED[name]
    with pytest.raises(TypeError) as info:
        sn.from_torch(make())
    message = str(info.value)
    assert fragment in message and "\n" not in message, message


def _lazy_initialised() -> nn.Module:
    linear = nn.LazyLinear(3)
    linear(torch.zeros(2, 4))
    return linear


def _frozen() -> nn.Module:
    return nn.Conv2d(3, 2, 3).requires_grad_(False)


ACCEPTED = {
    "Conv2d reflect": (lambda: nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect"),
                       (2, 3, 5, 4)),
    "Conv2d same, even kernel": (lambda: nn.Conv2d(3, 3, (3, 4), padding="same"), (2, 3, 5, 4)),
    "Conv2d circular, unbatched": (lambda: nn.Conv2d(3, 2, 3, padding=(1, 2),
                                                     padding_mode="circular"), (3, 5, 4)),
    "Conv2d same": (lambda: nn.Conv2d(3, 4, (3, 5), padding="same", dilation=(2, 1)),
                    (2, 3, 7, 6)),
    "Conv2d valid": (lambda: nn.Conv2d(3, 2, 2, padding="valid", bias=False), (2, 3, 5, 4)),
    "Conv2d groups": (lambda: nn.Conv2d(4, 6, 3, stride=(2, 1), padding=(1, 2), dilation=2,
                                        groups=2), (2, 4, 7, 6)),
    "Conv2d subclass keeping forward": (lambda: NamedConv(3, 2, 3), (2, 3, 5, 4)),
    "Conv2d frozen": (_frozen, (2, 3, 5, 4)),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1,
                                                   output_padding=1, groups=2, bias=False,
                                                   dilation=2), (2, 4, 3, 5)),
    "Upsample 2.0": (lambda: nn.Upsample(scale_factor=2.0), (2, 3, 3, 4)),
    "Upsample (1.0, 3.0)": (lambda: nn.Upsample(scale_factor=(1.0, 3.0)), (2, 3, 3, 4)),
    "Upsample 2.5": (lambda: nn.Upsample(scale_factor=2.5), (2, 3, 3, 4)),
    "Upsample (2, 1.5)": (lambda: nn.Upsample(scale_factor=(2, 1.5)), (2, 3, 3, 4)),
    "Upsample 0.5": (lambda: nn.Upsample(scale_factor=0.5), (2, 3, 5, 4)),
    "Upsample size": (lambda: nn.Upsample(size=(4, 7)), (2, 3, 3, 5)),
    "Upsample recompute 1.7": (lambda: nn.Upsample(scale_factor=1.7, recompute_scale_factor=True),
                               (2, 3, 5, 4)),
    "Upsample recompute": (lambda: nn.Upsample(scale_factor=2, recompute_scale_factor=True),
                           (2, 3, 3, 4)),
    "UpsamplingNearest2d": (lambda: nn.UpsamplingNearest2d(scale_factor=2), (2, 3, 3, 4)),
    "Linear": (lambda: nn.Linear(4, 3, bias=False), (2, 5, 4)),
    "Linear unbatched": (lambda: nn.Linear(4, 3), (4,)),
    "Linear lazy, initialised": (_lazy_initialised, (2, 4)),
    "ReLU inplace": (lambda: nn.ReLU(inplace=True), (2, 3, 4)),
    "LeakyReLU inplace": (lambda: nn.LeakyReLU(0.2, inplace=True), (2, 3, 4)),
    "Sigmoid": (nn.Sigmoid, (2, 3)),
    "Tanh": (nn.Tanh, (2, 3)),
    "Flatten": (lambda: nn.Flatten(0, 2), (2, 3, 4, 5)),
    "Identity": (nn.Identity, (2, 3)),
    "MaxPool2d": (lambda: nn.MaxPool2d((3, 2), (2, 1), (1, 0), (1, 2), ceil_mode=True),
                  (2, 3, 7, 6)),
    "MaxPool2d unbatched": (lambda: nn.MaxPool2d(2, padding=1), (3, 5, 4)),
    "MaxPool2d indices": (lambda: nn.MaxPool2d(3, 2, 1, return_indices=True), (2, 3, 7, 6)),
    "Sequential": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding="same"), nn.ReLU(),
                                         nn.MaxPool2d(2, ceil_mode=True), nn.Flatten(),
                                         nn.Linear(4 * 3 * 2, 2)), (2, 3, 5, 4)),
}


@pytest.mark.parametrize("name", ACCEPTED)
def test_from_torch_reproduces_outputs_and_gradients(name):
    make, shape = ACCEPTED[name]
    torch.manual_seed(0)
    twin = make().double()
    model = sn.from_torch(twin)
    x = make_tensor(shape, 1)
    out = model(x)
    y = out[0] if isinstance(out, tuple) else out
    g = make_tensor(tuple(y.shape), 2)
    xt = x.clone().requires_grad_(True)
    with torch.enable_grad():
        out_t = twin(xt.clone())                     # not a leaf: inplace layers may write it
        (out_t[0] if isinstance(out_t, tuple) else out_t).backward(g)
    for mine, theirs in zip(out if isinstance(out, tuple) else (out,),
                            out_t if isinstance(out_t, tuple) else (out_t,)):
        assert_close(mine, theirs.detach(), rtol=1e-10, atol=1e-10)
    assert_close(model.backward(g), xt.grad, rtol=1e-10, atol=1e-10)
    for (key, p), (_, q) in zip(model.named_parameters(), twin.named_parameters()):
        assert (p.grad is None) == (q.grad is None), key
        if q.grad is not None:
            assert_close(p.grad, q.grad, rtol=1e-10, atol=1e-10)


def test_from_torch_maxunpool2d_and_mse_loss_reproduce_torch():
    x = make_tensor((2, 3, 5, 7), 0)
    pooled, indices = nn.MaxPool2d(2, return_indices=True)(x)
    unpool = sn.from_torch(nn.MaxUnpool2d(2))
    assert repr(sn.to_torch(unpool)) == repr(nn.MaxUnpool2d(2))
    g = make_tensor((2, 3, 5, 7), 1)
    pt = pooled.clone().requires_grad_(True)
    with torch.enable_grad():
        nn.MaxUnpool2d(2)(pt, indices, output_size=(5, 7)).backward(g)
    assert torch.equal(unpool(pooled, indices, output_size=(5, 7)),
                       nn.MaxUnpool2d(2)(pooled, indices, output_size=(5, 7)))
    assert_close(unpool.backward(g), pt.grad)
    with pytest.warns(UserWarning):
        legacy = nn.MSELoss(size_average=False)
    crit = sn.from_torch(legacy)
    assert crit.reduction == "sum"
    assert torch.equal(crit(x, g), legacy(x, g))
