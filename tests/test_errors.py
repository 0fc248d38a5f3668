"""Bad input raises ValueError/RuntimeError/TypeError whose message names the layer and the shapes."""
from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

import scratchnet as sn

CONV = "Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1))"


def assert_raises(error: type[Exception], action: Callable[[], object], *fragments: str) -> None:
    """`action()` raises `error` and the message contains every fragment."""
    with pytest.raises(error) as info:
        action()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


SPATIAL = {
    "Conv2d": (lambda: sn.Conv2d(3, 8, 3), CONV, (1, 3, 2, 5)),
    "ConvTranspose2d": (lambda: sn.ConvTranspose2d(3, 8, 3, padding=2),
                        "ConvTranspose2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(2, 2))",
                        (1, 3, 1, 1)),
    "Upsampling": (lambda: sn.Upsampling(3, 8, 5),
                   "Upsampling(3, 8, kernel_size=(5, 5), stride=(1, 1), scale_factor=(2, 2))",
                   (1, 3, 2, 1)),
}


@pytest.mark.parametrize("name", SPATIAL)
def test_conv_like_input_checks(name):
    make, label, too_small = SPATIAL[name]
    layer = make()
    assert repr(layer) == label
    assert_raises(ValueError, lambda: layer(torch.zeros(6, 6)), label,
                  "3-D (C, H, W) or 4-D", "(6, 6)")
    assert_raises(ValueError, lambda: layer(torch.zeros(2, 4, 6, 6)), label, "3 channels",
                  "(2, 4, 6, 6)")
    assert_raises(ValueError, lambda: layer(torch.zeros(too_small)), label, "too small",
                  "(" + ", ".join(map(str, too_small)) + ")")
    assert_raises(ValueError, lambda: layer(torch.zeros(2, 3, 6, 6, dtype=torch.float64)),
                  label, "torch.float64", "torch.float32")
    assert_raises(TypeError, lambda: layer([[1.0]]), label, "list")


GRAD_SHAPES = {
    "Conv2d": (lambda: sn.Conv2d(3, 8, 3), (2, 3, 6, 7)),
    "ConvTranspose2d": (lambda: sn.ConvTranspose2d(3, 8, 3, stride=2), (2, 3, 4, 5)),
    "Upsampling": (lambda: sn.Upsampling(3, 8, 3, scale_factor=(2, 3)), (2, 3, 4, 5)),
    "Upsampling reference": (lambda: sn.Upsampling(3, 8, 3, stride=2), (2, 3, 4, 5)),
    "NearestUpsampling": (lambda: sn.NearestUpsampling(scale_factor=(1, 2)), (2, 3, 4, 5)),
    "MaxPool2d": (lambda: sn.MaxPool2d(2), (2, 3, 4, 6)),
    "Linear": (lambda: sn.Linear(5, 4), (2, 3, 5)),
    "ReLU": (lambda: sn.ReLU(), (2, 3)),
    "LeakyReLU": (lambda: sn.LeakyReLU(), (2, 3)),
    "Sigmoid": (lambda: sn.Sigmoid(), (2, 3)),
    "Tanh": (lambda: sn.Tanh(), (2, 3)),
    "Flatten": (lambda: sn.Flatten(), (2, 3, 4)),
    "Concat": (lambda: sn.Concat(sn.Conv2d(3, 1, 1), sn.Conv2d(3, 2, 1)), (2, 3, 4, 5)),
    "Sequential": (lambda: sn.Sequential(sn.Conv2d(3, 2, 1), sn.Flatten()), (2, 3, 4, 5)),
}
# A Sequential passes grad_output on: its last module is the one that complains.
COMPLAINS = {"Sequential": lambda layer: layer[-1]}


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


@pytest.mark.parametrize("name", GRAD_SHAPES)
def test_backward_checks(name):
    make, input_shape = GRAD_SHAPES[name]
    layer = make()
    assert_raises(RuntimeError, lambda: layer.backward(torch.zeros(1)), "backward called before")
    y = layer(torch.randn(input_shape))
    wrong = (*y.shape[:-1], y.shape[-1] + 1)
    complains = COMPLAINS.get(name, lambda layer: layer)(layer)
    assert_raises(ValueError, lambda: layer.backward(torch.zeros(wrong)), complains._short_repr(),
                  _shape(wrong), _shape(tuple(y.shape)))
    assert layer.backward(torch.ones_like(y)).shape == input_shape


def test_linear_and_pooling_and_flatten_inputs():
    assert_raises(ValueError, lambda: sn.Linear(3, 4)(torch.zeros(2, 5)),
                  "Linear(in_features=3, out_features=4, bias=True)", "(*, 3)", "(2, 5)")
    pool = "MaxPool2d(kernel_size=(3, 3), stride=(3, 3), padding=(0, 0))"
    assert_raises(ValueError, lambda: sn.MaxPool2d(3)(torch.zeros(5, 5)), pool, "(5, 5)")
    assert_raises(ValueError, lambda: sn.MaxPool2d(3)(torch.zeros(1, 1, 2, 5)), pool,
                  "too small", "(1, 1, 2, 5)")
    assert_raises(ValueError, lambda: sn.Flatten()(torch.zeros(5)),
                  "Flatten(start_dim=1, end_dim=-1)", "(5)")
    assert_raises(ValueError, lambda: sn.Flatten(2, 1)(torch.zeros(2, 3, 4)),
                  "Flatten(start_dim=2, end_dim=1)", "(2, 3, 4)")
    assert_raises(ValueError, lambda: sn.NearestUpsampling(scale_factor=2)(torch.zeros(2, 3)),
                  "NearestUpsampling(scale_factor=2.0, mode='nearest')", "(2, 3)")


def test_loss_checks():
    crit = sn.MSELoss()
    assert_raises(RuntimeError, crit.backward, "MSELoss()", "backward called before")
    assert_raises(ValueError, lambda: crit(torch.zeros(2, 3), torch.zeros(3, 2)),
                  "MSELoss()", "(2, 3)", "(3, 2)")
    none = sn.MSELoss("none")
    none(torch.zeros(2, 3), torch.ones(2, 3))
    assert_raises(ValueError, none.backward, "reduction='none'", "upstream gradient")
    assert_raises(ValueError, lambda: none.backward(torch.ones(3)),
                  "MSELoss(reduction='none')", "(3)", "(2, 3)")
    assert_raises(ValueError, lambda: sn.psnr(torch.zeros(1, 2), torch.zeros(2, 1)),
                  "psnr", "(1, 2)", "(2, 1)")


def test_container_checks():
    residual = sn.Residual(sn.Conv2d(2, 3, 1))
    assert_raises(ValueError, lambda: residual(torch.zeros(1, 2, 4, 4)), "Residual",
                  "(1, 2, 4, 4)", "(1, 3, 4, 4)")
    concat = sn.Concat(sn.Conv2d(2, 3, 1), sn.Conv2d(2, 3, 3))
    assert_raises(ValueError, lambda: concat(torch.zeros(1, 2, 4, 4)), "Concat",
                  "(1, 3, 4, 4)", "(1, 3, 2, 2)")
    assert_raises(ValueError, sn.Concat, "at least one branch")


class TransposedGradLinear(sn.Linear):
    """The classic slip: dW = Xᵀ·G instead of Gᵀ·X."""

    def backward(self, grad_output):
        x = self.saved["x"]
        self.accumulate_grad("weight", x.T @ grad_output)
        return grad_output @ self.weight


def test_wrongly_shaped_parameter_gradient_names_layer_and_shapes():
    layer = TransposedGradLinear(3, 4)
    layer(torch.zeros(2, 3))
    assert_raises(ValueError, lambda: layer.backward(torch.zeros(2, 4)),
                  "TransposedGradLinear(in_features=3, out_features=4, bias=True)",
                  "'weight'", "(3, 4)", "(4, 3)")
    assert layer.weight.grad is None
    layer.bias.grad = torch.zeros(4)
    assert_raises(ValueError, lambda: layer.accumulate_grad("bias", torch.ones(1)),
                  "'bias'", "(1)", "(4)")
    assert not layer.bias.grad.any()


def test_constructor_checks():
    assert_raises(ValueError, lambda: sn.Conv2d(3, 8, 3, groups=2), "Conv2d", "groups (2)")
    assert_raises(ValueError, lambda: sn.Conv2d(3, 8, 0), "Conv2d", "kernel_size (0, 0)")
    assert_raises(ValueError, lambda: sn.ConvTranspose2d(3, 6, 3, groups=2), "ConvTranspose2d")
    assert_raises(ValueError, lambda: sn.ConvTranspose2d(2, 2, 3, stride=2, output_padding=2),
                  "ConvTranspose2d", "output_padding (2, 2)")
    assert_raises(ValueError, lambda: sn.Upsampling(2, 2, 3, scale_factor=0), "Upsampling")
    assert_raises(ValueError, lambda: sn.NearestUpsampling(scale_factor=(2, 0)),
                  "NearestUpsampling")
    assert_raises(ValueError, lambda: sn.MaxPool2d(2, padding=2), "MaxPool2d", "padding (2, 2)")
    assert_raises(ValueError, lambda: sn.MSELoss("average"), "MSELoss", "'average'")
    assert_raises(ValueError, lambda: sn.Conv2d(3, 8, (3, 3, 3)), "kernel_size", "(3, 3, 3)")


def test_impl_is_checked():
    layer = sn.Conv2d(1, 1, 1)
    layer.impl = "fastest"
    assert_raises(ValueError, lambda: layer(torch.zeros(1, 1, 2, 2)), "'fastest'")


def _message(action: Callable[[], object]) -> str:
    with pytest.raises(ValueError) as info:
        action()
    return str(info.value)


@pytest.mark.parametrize("mismatch", ["dtype", "device"])
def test_linear_checks_dtype_and_device_like_conv2d(mismatch):
    """A float64 input to a float32 layer, or a cpu input to a layer on another device: Linear
    names itself in Conv2d's message instead of letting the matrix product fail."""
    factory = {"device": "meta"} if mismatch == "device" else {}
    x = torch.zeros(2, 5, 3, dtype=torch.float64 if mismatch == "dtype" else torch.float32)
    linear, conv = sn.Linear(3, 4, **factory), sn.Conv2d(5, 4, 1, **factory)
    expected = _message(lambda: conv(x[..., None])).replace(conv._short_repr(),
                                                            linear._short_repr())
    assert_raises(ValueError, lambda: linear(x), expected)
    assert expected == {
        "dtype": "Linear(in_features=3, out_features=4, bias=True): input is torch.float64 on cpu "
                 "but the weight is torch.float32 on cpu; move one with .to()",
        "device": "Linear(in_features=3, out_features=4, bias=True): input is torch.float32 on "
                  "cpu but the weight is torch.float32 on meta; move one with .to()",
    }[mismatch]


def test_impl_choice_has_its_own_module():
    """The convolution helpers and Adam check `impl` with scratchnet.impl, not with each other."""
    from scratchnet import im2col, impl
    from scratchnet.optim import adam

    assert impl.IMPLS == ("fast", "reference")
    assert im2col.check_impl is impl.check_impl and adam.check_impl is impl.check_impl
    opt = sn.Adam([torch.zeros(1)])
    opt.impl = "fastest"
    assert_raises(ValueError, opt.step, "impl must be 'fast' or 'reference'", "'fastest'")


@pytest.mark.parametrize("name", ["Conv2d", "ConvTranspose2d", "Upsampling"])
def test_conv_like_layers_share_one_constructor(name):
    """Channels, groups, pairs, `impl` and the parameters come from ConvLayer; the constructor
    checks and their messages stay those of each layer."""
    from scratchnet.conv import ConvLayer

    cls = getattr(sn, name)
    assert issubclass(cls, ConvLayer)
    groups = {"Upsampling": {}}.get(name, {"groups": 2})
    layer = cls(4, 6, (3, 2), **groups, padding=1, dilation=(1, 2), bias=False, device="meta",
                dtype=torch.float64)
    weight = {"Conv2d": (6, 2, 3, 2), "ConvTranspose2d": (4, 3, 3, 2), "Upsampling": (6, 4, 3, 2)}
    assert (layer.in_channels, layer.out_channels, layer.groups) == (4, 6, groups.get("groups", 1))
    assert (layer.kernel_size, layer.padding, layer.dilation, layer.impl) == \
        ((3, 2), (1, 1), (1, 2), "fast")
    assert layer.weight.shape == weight[name] and layer.bias is None
    assert layer.weight.device.type == "meta" and layer.weight.dtype == torch.float64
    if name != "Upsampling":
        assert_raises(ValueError, lambda: cls(3, 6, 3, groups=2),
                      f"{name}: in_channels (3) and out_channels (6) must both be divisible by "
                      "groups (2)")
