"""Conv2d's padding as torch has it: every padding_mode ('zeros', 'reflect', 'replicate',
'circular'), padding='same' (odd and even kernels: the extra pixel at the bottom/right) and
'valid'; unbatched (C, H, W) inputs of Conv2d, ConvTranspose2d and Upsampling; the refusals
torch makes (with messages naming the layer, the argument and the sizes); from_torch/to_torch.
Against torch.nn in float64 with torch's autograd as the reference (test_layers_vs_torch.compare).
"""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import LayerConfig, as_pair, impls, int_or_pair, make_tensor, tensors
from test_layers_vs_torch import TOL, compare, randomize
from torch import Tensor, nn
from torch.testing import assert_close

import scratchnet as sn
from scratchnet.padding import MODES

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
FEW = settings(max_examples=max(1, settings.default.max_examples * 2 // 5))


def side_pads(padding: int | tuple[int, int] | str, kernel: tuple[int, int],
              dilation: tuple[int, int]) -> list[tuple[int, int]]:
    """[(top, bottom), (left, right)] for Conv2d's `padding`, by torch's rule for 'same'."""
    if padding == "valid":
        return [(0, 0), (0, 0)]
    if padding == "same":
        return [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation)]
    return [(p, p) for p in as_pair(padding)]


def smallest_size(mode: str, before: int, after: int, span: int) -> int:
    """The smallest input size along one axis that torch pads by `mode` and convolves to ≥ 1."""
    fits = {"reflect": max(before, after) + 1, "circular": max(before, after)}.get(mode, 1)
    return max(1, fits, span - before - after)


@st.composite
def padded_conv2d_configs(draw: st.DrawFn, mode: str) -> LayerConfig:
    """Conv2d(C_in, C_out, kernel, stride, padding, dilation, groups, bias, padding_mode) with
    padding an int, a pair, 'same' (then stride 1) or 'valid', and an input torch accepts."""
    groups = draw(st.integers(1, 2), label="groups")
    c_in = groups * draw(st.integers(1 if groups > 1 else 2, 3))
    c_out = groups * draw(st.integers(1 if groups > 1 else 2, 3))
    kernel, dilation = draw(int_or_pair(1, 4)), draw(int_or_pair(1, 2))
    padding = draw(st.one_of(int_or_pair(0, 2), st.sampled_from(["same", "valid"])),
                   label="padding")
    stride = 1 if padding == "same" else draw(int_or_pair(1, 2))
    lows = [smallest_size(mode, *pads, d * (k - 1) + 1) for pads, k, d in
            zip(side_pads(padding, as_pair(kernel), as_pair(dilation)), as_pair(kernel),
                as_pair(dilation))]
    h = draw(st.integers(lows[0], lows[0] + 3), label="H")
    w = draw(st.integers(lows[1], lows[1] + 3).filter(lambda w: w != h), label="W")
    kwargs = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
              "bias": draw(st.booleans(), label="bias"), "padding_mode": mode}
    return LayerConfig((c_in, c_out, kernel), kwargs, (draw(st.integers(2, 3)), c_in, h, w))


def conv2d_pair(cfg: LayerConfig, impl: str, data: st.DataObject) -> tuple[sn.Conv2d, nn.Conv2d]:
    layer = sn.Conv2d(*cfg.args, **cfg.kwargs, dtype=torch.float64)
    layer.impl = impl
    randomize(layer, data)
    return layer, nn.Conv2d(*cfg.args, **cfg.kwargs, dtype=torch.float64)


@pytest.mark.parametrize("impl", impls)
@pytest.mark.parametrize("mode", MODES)
@FEW
@given(data=st.data())
def test_conv2d_padding_modes(mode, impl, data):
    cfg = data.draw(padded_conv2d_configs(mode), label="cfg")
    layer, twin = conv2d_pair(cfg, impl, data)
    assert repr(layer) == repr(twin)
    assert layer.padding == twin.padding and layer.padding_mode == twin.padding_mode
    assert layer._reversed_padding_repeated_twice == list(twin._reversed_padding_repeated_twice)
    compare(layer, twin, data.draw(tensors(cfg.input_shape), label="x"), data)


@pytest.mark.parametrize("impl", impls)
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("kernel, dilation", [(3, 1), (4, 1), ((2, 3), (1, 2)), ((3, 4), 2)])
@FEW
@given(data=st.data())
def test_same_and_valid_padding(kernel, dilation, padding, impl, data):
    """Odd and even kernel extents d·(k − 1) + 1. 'same': the output has the input's height and
    width, torch padding the extra pixel at the bottom/right; 'valid': no padding at all."""
    extent = [d * (k - 1) + 1 for k, d in zip(as_pair(kernel), as_pair(dilation))]
    h = data.draw(st.integers(extent[0], extent[0] + 3), label="H")
    w = data.draw(st.integers(extent[1], extent[1] + 3).filter(lambda w: w != h), label="W")
    mode = data.draw(st.sampled_from(MODES), label="padding_mode")
    cfg = LayerConfig((2, 3, kernel), {"padding": padding, "dilation": dilation,
                                       "padding_mode": mode}, (2, 2, h, w))
    layer, twin = conv2d_pair(cfg, impl, data)
    x = data.draw(tensors(cfg.input_shape), label="x")
    if padding == "same":
        assert layer(x).shape == (2, 3, h, w)
    else:
        unpadded = sn.Conv2d(*cfg.args, dilation=dilation, dtype=torch.float64)
        unpadded.load_state_dict(layer.state_dict())
        unpadded.impl = impl
        assert_close(layer(x), unpadded(x), rtol=0, atol=0)
    compare(layer, twin, x, data)


class Unbatched(nn.Module):
    """A torch module that only takes batches, given a (C, H, W) input as a batch of one."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: Tensor) -> Tensor:
        return self.inner(x.unsqueeze(0)).squeeze(0)


Case = tuple[sn.Module, nn.Module, tuple[int, ...], "dict[str, Tensor] | None"]
"""(layer, torch twin, unbatched input shape, the twin's parameters by scratchnet name or None)"""


def _conv2d(data: st.DataObject) -> Case:
    mode = data.draw(st.sampled_from(MODES), label="padding_mode")
    cfg = data.draw(padded_conv2d_configs(mode), label="cfg")
    return (sn.Conv2d(*cfg.args, **cfg.kwargs, dtype=torch.float64),
            nn.Conv2d(*cfg.args, **cfg.kwargs, dtype=torch.float64), cfg.input_shape[1:], None)


def _conv_transpose2d(data: st.DataObject) -> Case:
    kernel, stride = data.draw(int_or_pair(2, 3)), data.draw(int_or_pair(1, 2))
    args, kwargs = (2, 3, kernel), {"stride": stride, "padding": data.draw(st.integers(0, 1))}
    shape = (2, data.draw(st.integers(2, 4)), data.draw(st.integers(2, 4)))
    return (sn.ConvTranspose2d(*args, **kwargs, dtype=torch.float64),
            nn.ConvTranspose2d(*args, **kwargs, dtype=torch.float64), shape, None)


def _upsampling(data: st.DataObject) -> Case:
    """torch's Upsample reads a 3-D input as (N, C, L): the twin gets a batch of one."""
    scale, kernel = data.draw(int_or_pair(1, 2)), data.draw(int_or_pair(1, 3))
    stride, padding = data.draw(st.sampled_from([1, 2])), data.draw(st.integers(0, 1))
    conv = nn.Conv2d(2, 3, kernel, stride, padding, dtype=torch.float64)
    twin = Unbatched(nn.Sequential(nn.Upsample(scale_factor=scale), conv))
    return (sn.Upsampling(2, 3, kernel, scale, stride, padding, dtype=torch.float64), twin,
            (2, data.draw(st.integers(3, 5)), data.draw(st.integers(3, 5))),
            {"weight": conv.weight, "bias": conv.bias})


UNBATCHED = {"Conv2d": _conv2d, "ConvTranspose2d": _conv_transpose2d, "Upsampling": _upsampling}


@pytest.mark.parametrize("impl", impls)
@pytest.mark.parametrize("name", UNBATCHED)
@FEW
@given(data=st.data())
def test_unbatched_input(name, impl, data):
    """(C_in, H, W) → (C_out, H_out, W_out), the input gradient (C_in, H, W), as torch."""
    layer, twin, shape, twin_params = UNBATCHED[name](data)
    layer.impl = impl
    randomize(layer, data)
    x = data.draw(tensors(shape), label="x")
    compare(layer, twin, x, data, twin_params)
    batch = layer(x.unsqueeze(0))
    assert_close(layer(x), batch[0], rtol=0, atol=0)
    with sn.no_grad():
        assert layer(x).shape == batch.shape[1:]


CHECKED = {
    "Conv2d": lambda: sn.Conv2d(2, 3, 3, padding="same", padding_mode="reflect"),
    "ConvTranspose2d": lambda: sn.ConvTranspose2d(2, 3, 3, stride=2),
    "Upsampling": lambda: sn.Upsampling(2, 3, 3, padding=1),
    "Upsampling reference": lambda: sn.Upsampling(2, 3, 3, stride=2),
}


@pytest.mark.parametrize("name", CHECKED)
def test_unbatched_checks(name):
    """Other ranks are refused naming the layer; after an unbatched forward, backward takes a
    gradient of the unbatched output's shape only."""
    layer = CHECKED[name]()
    for bad in ((4, 5), (1, 2, 2, 4, 5)):
        with pytest.raises(ValueError) as info:
            layer(torch.zeros(bad))
        shape = "(" + ", ".join(map(str, bad)) + ")"
        assert str(info.value) == (f"{layer._short_repr()}: expected a 3-D (C, H, W) or 4-D "
                                   f"(N, C, H, W) input, got input of shape {shape}")
    y = layer(torch.randn(2, 4, 5))
    assert y.dim() == 3
    for wrong in (y.unsqueeze(0), y[:, 1:]):
        with pytest.raises(ValueError, match="does not match the output shape"):
            layer.backward(torch.zeros_like(wrong))
    assert layer.backward(torch.ones_like(y)).shape == (2, 4, 5)
    with pytest.raises(ValueError, match="does not match the output shape"):
        layer(torch.randn(1, 2, 4, 5))
        layer.backward(torch.ones_like(y))


class Doubled(sn.Conv2d):
    """A subclass whose forward and backward call Conv2d's: unbatched inputs still work."""

    def forward(self, x: Tensor) -> Tensor:
        return 2 * super().forward(x)

    def backward(self, grad_output: Tensor) -> Tensor:
        return super().backward(2 * grad_output)


def test_unbatched_input_through_a_subclass():
    layer = Doubled(2, 3, 3, padding=1, padding_mode="circular", dtype=torch.float64)
    plain = sn.Conv2d(2, 3, 3, padding=1, padding_mode="circular", dtype=torch.float64)
    plain.load_state_dict(layer.state_dict())
    x, g = make_tensor((2, 4, 5), 0), make_tensor((3, 4, 5), 1)
    assert_close(layer(x), 2 * plain(x), rtol=0, atol=0)
    assert_close(layer.backward(g), plain.backward(2 * g), rtol=0, atol=0)
    assert_close(layer.weight.grad, plain.weight.grad, rtol=0, atol=0)


REFUSED = {
    "padding string": (lambda m: m.Conv2d(2, 3, 3, padding="full"),
                       "Conv2d: invalid padding string 'full', should be 'same' or 'valid'"),
    "same, stride 2": (lambda m: m.Conv2d(2, 3, 3, stride=2, padding="same"),
                       ("Conv2d: padding='same' is not supported for strided convolutions "
                        "(stride (2, 2))")),
    "same, stride (1, 2)": (lambda m: m.Conv2d(2, 3, 4, stride=(1, 2), padding="same"),
                            ("padding='same' is not supported for strided convolutions "
                             "(stride (1, 2))")),
    "padding_mode": (lambda m: m.Conv2d(2, 3, 3, padding_mode="symmetric"),
                     ("Conv2d: padding_mode must be one of 'zeros', 'reflect', 'replicate', "
                      "'circular', got padding_mode='symmetric'")),
    **{f"ConvTranspose2d {mode}": (
        lambda m, mode=mode: m.ConvTranspose2d(2, 3, 3, padding_mode=mode),
        f"ConvTranspose2d: padding_mode={mode!r} is not supported; only 'zeros' is")
       for mode in ("reflect", "replicate", "circular", "constant")},
}


@pytest.mark.parametrize("name", REFUSED)
def test_refused_where_torch_refuses(name):
    """torch.nn's constructor raises ValueError for each; so does scratchnet's, saying why."""
    make, message = REFUSED[name]
    with pytest.raises(ValueError):
        make(nn)
    with pytest.raises(ValueError) as info:
        make(sn)
    assert message in str(info.value)


def test_conv_transpose2d_refuses_string_padding():
    """torch builds ConvTranspose2d(padding='same') with padding ('s', 'a', 'm', 'e'), then fails
    in forward; scratchnet refuses it at once."""
    with pytest.raises(TypeError):
        nn.ConvTranspose2d(2, 3, 3, padding="same")(torch.zeros(1, 2, 4, 4))
    with pytest.raises(TypeError, match="ConvTranspose2d: padding='same' is not supported; "
                                        "give an int or a pair"):
        sn.ConvTranspose2d(2, 3, 3, padding="same")


def first_too_large(mode: str, pads: tuple[int, int, int, int], h: int, w: int) -> str | None:
    """The message for the first side (top, bottom, left, right) that `mode` cannot pad."""
    for amount, side, size, extent in zip(pads, ("top", "bottom", "left", "right"),
                                          (h, h, w, w), ("height", "height", "width", "width")):
        if mode == "reflect" and amount >= size:
            return f"padding {amount} at the {side} must be smaller than the input {extent} {size}"
        if mode == "circular" and amount > size:
            return f"padding {amount} at the {side} must be at most the input {extent} {size}"
    return None


@given(mode=st.sampled_from(MODES), padding=st.one_of(int_or_pair(0, 5), st.just("same")),
       kernel=int_or_pair(1, 6), h=st.integers(1, 5), w=st.integers(1, 5))
def test_padding_larger_than_the_input_is_refused_as_torch_does(mode, padding, kernel, h, w):
    """reflect: each side's padding smaller than the input; circular: at most its size;
    replicate and zeros: any. Refused with a ValueError naming the layer, the padding, the input
    size and shape where torch raises."""
    layer = sn.Conv2d(2, 3, kernel, padding=padding, padding_mode=mode)
    twin = nn.Conv2d(2, 3, kernel, padding=padding, padding_mode=mode)
    if min(layer.output_size(h, w)) < 1:
        return                                              # too small for the kernel anyway
    x = torch.zeros(2, 2, h, w)
    expected = first_too_large(mode, layer.pads(), h, w)
    if expected is None:
        assert layer(x).shape == twin(x).shape
        return
    with pytest.raises(RuntimeError):
        twin(x)
    with pytest.raises(ValueError) as info:
        layer(x)
    assert str(info.value) == (f"{layer._short_repr()}: {expected} with padding_mode={mode!r} "
                               f"(input of shape (2, 2, {h}, {w}))")


@FEW
@given(data=st.data())
def test_torch_positional_order(data):
    """Conv2d(in, out, kernel, stride, padding, dilation, groups, bias, padding_mode) and
    ConvTranspose2d(in, out, kernel, stride, padding, output_padding, groups, bias, dilation,
    padding_mode), positionally, mean what they mean in torch."""
    for cls, args, shape in (
            ("Conv2d", (2, 3, 3, 2, (1, 2), 1, 1, True, "reflect"), (2, 2, 5, 6)),
            ("ConvTranspose2d", (2, 3, 3, 2, 1, 1, 1, True, 1, "zeros"), (2, 2, 3, 4))):
        layer = getattr(sn, cls)(*args, dtype=torch.float64)
        twin = getattr(nn, cls)(*args, dtype=torch.float64)
        assert repr(layer) == repr(twin)
        for name in ("stride", "padding", "dilation", "groups", "padding_mode"):
            assert getattr(layer, name) == getattr(twin, name), name
        randomize(layer, data)
        compare(layer, twin, data.draw(tensors(shape), label="x"), data)


ROUND_TRIPS = {
    "reflect": lambda: nn.Conv2d(3, 4, 3, padding=(1, 2), padding_mode="reflect"),
    "replicate, same, even kernel": lambda: nn.Conv2d(3, 4, (2, 4), padding="same",
                                                      padding_mode="replicate"),
    "circular, strided, groups": lambda: nn.Conv2d(3, 6, 3, stride=2, padding=2, groups=3,
                                                   bias=False, padding_mode="circular"),
    "zeros, same, dilated, even": lambda: nn.Conv2d(3, 2, (3, 4), padding="same",
                                                    dilation=(2, 1)),
    "reflect, valid": lambda: nn.Conv2d(3, 2, 2, padding="valid", padding_mode="reflect"),
    "ConvTranspose2d": lambda: nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1,
                                                  padding_mode="zeros"),
}


@pytest.mark.parametrize("name", ROUND_TRIPS)
def test_from_torch_and_back(name):
    """torch → scratchnet → torch keeps padding, padding_mode, the repr and the state_dict keys;
    all three give the same outputs (batched and unbatched) and scratchnet torch's gradients."""
    twin = ROUND_TRIPS[name]().double()
    model = sn.from_torch(twin)
    back = sn.to_torch(model)
    assert type(back) is type(twin) and repr(model) == repr(twin) == repr(back)
    for attr in ("padding", "padding_mode"):
        assert getattr(model, attr) == getattr(twin, attr) == getattr(back, attr)
    if isinstance(twin, nn.Conv2d):
        assert model._reversed_padding_repeated_twice == list(
            twin._reversed_padding_repeated_twice) == list(back._reversed_padding_repeated_twice)
    assert list(model.state_dict()) == list(twin.state_dict()) == list(back.state_dict())
    x = make_tensor((2, 3, 5, 6), 1)
    for inputs in (x, x[0]):
        y = model(inputs)
        assert_close(y, twin(inputs), **TOL)
        assert torch.equal(back(inputs), twin(inputs))
    g = make_tensor(tuple(y.shape), 2)
    xt = x[0].clone().requires_grad_(True)
    with torch.enable_grad():
        twin(xt).backward(g)
    assert_close(model.backward(g), xt.grad, **TOL)
    for (key, p), (_, q) in zip(model.named_parameters(), twin.named_parameters()):
        assert_close(p.grad, q.grad, **TOL, msg=key)


@pytest.mark.parametrize("bias", [True, False])
def test_state_dict_keys_unchanged(bias):
    """The new options add no state: the keys stay torch's, and state_dicts load both ways."""
    layer = sn.Conv2d(3, 4, 4, padding="same", bias=bias, padding_mode="circular")
    twin = nn.Conv2d(3, 4, 4, padding="same", bias=bias, padding_mode="circular")
    keys = ["weight", "bias"] if bias else ["weight"]
    assert list(layer.state_dict()) == list(twin.state_dict()) == keys
    assert not twin.load_state_dict(layer.state_dict()).missing_keys
    assert not layer.load_state_dict(twin.state_dict()).missing_keys
