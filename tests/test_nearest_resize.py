"""`NearestUpsampling` as torch.nn.UpsamplingNearest2d: `size` or any scale factor (non-integer,
below 1, pairs), 3-D inputs, refusals, `from_torch`/`to_torch`; `LeakyReLU(inplace=True)`,
`Identity(*args, **kwargs)`, and `gradcheck` of a forward that returns a tuple. float64, torch
autograd as the reference, random upstream gradients.

torch's index rule for mode='nearest' (ATen's `nearest_idx`): output index o copies input index
min(⌊o·r⌋, in − 1), r = 1/scale_factor when a scale factor is given (not in/out), in/out for a
size, both in float32; out = in and out = 2·in are exact copies and halvings. torch's backward
always uses it; its CPU forward uses it when out_H + out_W ≤ 128 or the input is channels-last
with C > 3, and otherwise a second kernel that rounds differently in rare cases (see
test_torch_forward_kernels_disagree_and_its_backward_follows_ours). The drawn shapes here stay
below that threshold, where torch's forward and backward agree.
"""
from __future__ import annotations

import math
import re

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import impls, make_tensor, negative_slopes, shapes, tensors
from test_layers_vs_torch import TOL, compare
from torch import nn
from torch.testing import assert_close

import scratchnet as sn
from scratchnet.im2col import select_pixels, select_pixels_backward
from scratchnet.upsampling import nearest_axis, nearest_upsample, nearest_upsample_backward

factors = st.one_of(st.integers(1, 4),
                    st.sampled_from([0.5, 0.6, 0.7, 1.3, 1.5, 1.7, 2.0, 2.5, 2.7, 3.3]),
                    st.floats(0.25, 4.0).map(lambda f: round(f, 3)))
sizes = st.integers(1, 14)


def output_sizes(kwargs: dict, spatial: tuple[int, ...]) -> tuple[int, ...]:
    """The output's spatial size that torch computes for `kwargs` (size or scale_factor)."""
    value = kwargs.get("size", kwargs.get("scale_factor"))
    values = value if isinstance(value, tuple) else (value,) * len(spatial)
    if "size" in kwargs:
        return tuple(values)
    return tuple(math.floor(n * float(f)) for n, f in zip(spatial, values))


@st.composite
def resize_configs(draw: st.DrawFn) -> tuple[dict, tuple[int, int, int, int]]:
    """(constructor kwargs, input shape): N, C ∈ {2, 3}, H ≠ W, a size or a scale factor, each
    an int/number or a pair, with an output of at least 1×1."""
    h = draw(st.integers(1, 8), label="H")
    w = draw(st.integers(1, 8).filter(lambda w: w != h), label="W")
    if draw(st.booleans(), label="by size"):
        kwargs = {"size": draw(st.one_of(sizes, st.tuples(sizes, sizes)), label="size")}
    else:
        kwargs = {"scale_factor": draw(st.one_of(factors, st.tuples(factors, factors)),
                                       label="scale_factor")}
    assume(min(output_sizes(kwargs, (h, w))) >= 1)
    return kwargs, (draw(st.integers(2, 3)), draw(st.integers(2, 3)), h, w)


@pytest.mark.parametrize("twin_class", ["UpsamplingNearest2d", "Upsample"])
@given(cfg=resize_configs(), data=st.data())
def test_forward_and_gradient_match_torch(twin_class, cfg, data):
    kwargs, shape = cfg
    layer = sn.NearestUpsampling(**kwargs)
    twin = (nn.UpsamplingNearest2d(**kwargs) if twin_class == "UpsamplingNearest2d"
            else nn.Upsample(**kwargs, mode="nearest"))
    compare(layer, twin, data.draw(tensors(shape), label="x"), data)
    torch_repr = repr(nn.UpsamplingNearest2d(**kwargs))
    assert repr(layer) == torch_repr.replace("UpsamplingNearest2d", "NearestUpsampling")


@given(length=st.integers(1, 10), by_size=st.booleans(), one_tuple=st.booleans(),
       size=sizes, factor=factors, data=st.data())
def test_a_3d_input_is_a_batch_of_signals_as_in_torch(length, by_size, one_tuple, size, factor,
                                                      data):
    """(N, C, L) → (N, C, L_out), resized along L only: torch reads a 3-D input as signals, not
    as an unbatched image (C, H, W). The gradient is torch's; the forward is that of torch's
    2-D kernel on the same rows (its 1-D forward kernel is the second kernel of the module
    docstring)."""
    value = size if by_size else factor
    kwargs = {"size" if by_size else "scale_factor": (value,) if one_tuple else value}
    (out,) = output_sizes({k: v if not isinstance(v, tuple) else v[0] for k, v in kwargs.items()},
                          (length,))
    assume(out >= 1)
    layer = sn.NearestUpsampling(**kwargs)
    x = data.draw(tensors((data.draw(st.integers(2, 3)), 2, length)), label="x")
    y = layer(x)
    assert y.shape == (x.shape[0], 2, out)
    g = data.draw(tensors(tuple(y.shape)), label="grad_output")
    with torch.enable_grad():
        xt = x.clone().requires_grad_(True)
        yt = nn.UpsamplingNearest2d(**kwargs)(xt)
        yt.backward(g)
    assert yt.shape == y.shape
    assert_close(layer.backward(g), xt.grad, **TOL)
    rows_kwargs = ({"size": (1, out)} if by_size else {"scale_factor": (1.0, float(factor))})
    assert_close(y, nn.UpsamplingNearest2d(**rows_kwargs)(x.unsqueeze(2)).squeeze(2), **TOL)


@given(s_h=st.integers(1, 4), s_w=st.integers(1, 4), h=st.integers(1, 6), w=st.integers(1, 6),
       data=st.data())
def test_whole_number_scales_take_the_block_path_which_equals_the_gather(s_h, s_w, h, w, data):
    """For scales 1–4 torch's index rule is o // s: the block repeat and block sums of
    `nearest_upsample(_backward)` (the T06.1/T06.2 exercise), equal to the general gather."""
    (rows, r_h), (cols, r_w) = nearest_axis(h, s_h * h, float(s_h)), nearest_axis(w, s_w * w,
                                                                                    float(s_w))
    assert (r_h, r_w) == (s_h, s_w)
    x = data.draw(tensors((2, 3, h, w)), label="x")
    assert torch.equal(nearest_upsample(x, (s_h, s_w)), select_pixels(x, rows, cols))
    g = data.draw(tensors((2, 3, s_h * h, s_w * w)), label="grad")
    assert_close(nearest_upsample_backward(g, (s_h, s_w)),
                 select_pixels_backward(g, (h, w), rows, cols), **TOL)


def test_a_scale_factor_indexes_with_its_reciprocal_not_in_over_out():
    """Width 4, scale 0.7: 2 columns reading 0 and 1 (r = 1/0.7), whereas size 2 reads 0 and 2
    (r = 4/2): a scale factor and the size it gives are different layers, in torch as here."""
    x = torch.arange(4.0).view(1, 1, 1, 4)
    by_scale = sn.NearestUpsampling(scale_factor=(1, 0.7))(x)
    by_size = sn.NearestUpsampling(size=(1, 2))(x)
    assert by_scale.flatten().tolist() == [0.0, 1.0] and by_size.flatten().tolist() == [0.0, 2.0]
    assert torch.equal(by_scale, nn.UpsamplingNearest2d(scale_factor=(1, 0.7))(x))
    assert torch.equal(by_size, nn.UpsamplingNearest2d(size=(1, 2))(x))


def test_whole_number_scale_41_copies_the_first_pixel_once_more_as_torch():
    """1/41 rounds down in float32, so output 41 = 41·r < 1 still reads pixel 0: pixel 0 is
    copied 42 times, pixel 1 only 40. Not a block repeat, so the gather path runs."""
    x = torch.arange(2.0).view(1, 1, 1, 2)
    layer = sn.NearestUpsampling(scale_factor=(1, 41))
    y = layer(x)
    assert y[0, 0, 0, 40:43].tolist() == [0.0, 0.0, 1.0]
    assert torch.equal(y, nn.UpsamplingNearest2d(scale_factor=(1, 41))(x))
    assert layer.backward(torch.ones_like(y)).flatten().tolist() == [42.0, 40.0]
    assert nearest_axis(2, 82, 41.0)[1] is None


def test_torch_forward_kernels_disagree_and_its_backward_follows_ours():
    """Scale 1.001 on width 160 keeps the width (⌊160.16⌋ = 160). torch's nearest_idx copies the
    input, as here; its generic forward kernel (contiguous input, out_H + out_W > 128) computes
    o/1.001 and drops the last column, while its backward still copies: its gradient is not the
    derivative of that forward. scratchnet's forward is the channels-last kernel's, and its
    gradient torch's."""
    x = make_tensor((1, 4, 3, 160), 0)
    layer, twin = sn.NearestUpsampling(scale_factor=1.001), nn.UpsamplingNearest2d(
        scale_factor=1.001)
    y = layer(x)
    assert torch.equal(y, x)
    assert torch.equal(twin(x.contiguous(memory_format=torch.channels_last)), y)
    assert not torch.equal(twin(x), y), ("torch's two forward kernels now agree: update the "
                                         "docstrings of this file and of NearestUpsampling")
    g = make_tensor(tuple(y.shape), 1)
    with torch.enable_grad():
        xt = x.clone().requires_grad_(True)
        twin(xt).backward(g)
    assert_close(layer.backward(g), xt.grad, **TOL)


def test_empty_batch_and_identity_copies():
    """N = 0 works; an output that is a copy of the input is a new tensor, never x itself (an
    in-place layer after it must not write the caller's x)."""
    layer = sn.NearestUpsampling(scale_factor=2.5)
    y = layer(torch.zeros(0, 3, 4, 5))
    assert y.shape == (0, 3, 10, 12) and layer.backward(y).shape == (0, 3, 4, 5)
    x = make_tensor((2, 3, 4, 5), 0)
    same = sn.NearestUpsampling(size=(4, 5))(x)
    assert torch.equal(same, x) and same.data_ptr() != x.data_ptr()


CONSTRUCTOR_REFUSALS = {
    "neither": ({}, ValueError, "either size or scale_factor should be defined"),
    "scale 0 counts as none": ({"scale_factor": 0}, ValueError, "either size or scale_factor"),
    "both": ({"size": 4, "scale_factor": 2}, ValueError,
             "only one of size or scale_factor should be defined"),
    "negative scale": ({"scale_factor": -2}, ValueError, "must be finite and > 0"),
    "infinite scale": ({"scale_factor": (2, math.inf)}, ValueError, "must be finite and > 0"),
    "size 0": ({"size": (0, 3)}, ValueError, "size=(0, 3) must be ≥ 1"),
    "fractional size": ({"size": 2.5}, TypeError, "size must be an int or a pair of ints"),
    "three sizes": ({"size": (2, 3, 4)}, ValueError, "one value or one per spatial dimension"),
}


@pytest.mark.parametrize("name", CONSTRUCTOR_REFUSALS)
def test_constructor_refuses_what_torchs_forward_refuses(name):
    """torch checks these at the first forward; scratchnet at construction, in one line."""
    kwargs, error, fragment = CONSTRUCTOR_REFUSALS[name]
    with pytest.raises(error, match=re.escape(fragment)) as info:
        sn.NearestUpsampling(**kwargs)
    assert str(info.value).startswith("NearestUpsampling: ") and "\n" not in str(info.value)
    with pytest.raises(Exception):  # noqa: B017 - torch's error types vary
        nn.UpsamplingNearest2d(**kwargs)(torch.zeros(1, 1, 3, 3))


def _recomputed_with_size() -> sn.NearestUpsampling:
    layer = sn.NearestUpsampling(size=4)
    layer.recompute_scale_factor = True
    return layer


FORWARD_REFUSALS = {
    "2-D input": (lambda: sn.NearestUpsampling(scale_factor=2), (3, 4),
                  "expected a 4-D (N, C, H, W) or 3-D (N, C, L) input, got input of shape (3, 4)"),
    "pair for a 3-D input": (lambda: sn.NearestUpsampling(scale_factor=(2, 3)), (2, 3, 4),
                             ("scale_factor=(2.0, 3.0) has 2 values but input of shape (2, 3, 4) "
                              "has 1 spatial dimension(s) (as in torch, a 3-D input is "
                              "(N, C, L))")),
    "empty output": (lambda: sn.NearestUpsampling(scale_factor=0.2), (2, 3, 4, 6),
                     "gives an output of size 0×1; input and output sizes must be ≥ 1"),
    "empty input": (lambda: sn.NearestUpsampling(size=3), (2, 3, 0, 4),
                    "input and output sizes must be ≥ 1"),
    "recompute with a size": (_recomputed_with_size, (2, 3, 4, 5),
                              "recompute_scale_factor is not meaningful with an explicit size"),
}


@pytest.mark.parametrize("name", FORWARD_REFUSALS)
def test_forward_refuses_what_torch_refuses(name):
    make, shape, fragment = FORWARD_REFUSALS[name]
    layer = make()
    with pytest.raises(ValueError, match=re.escape(fragment)):
        layer(torch.zeros(shape))
    with pytest.raises(Exception):  # noqa: B017
        sn.to_torch(layer)(torch.zeros(shape))


ROUND_TRIPS = {
    "Upsample 2.5": (lambda: nn.Upsample(scale_factor=2.5), (2, 3, 5, 4)),
    "UpsamplingNearest2d (0.5, 1.7)": (lambda: nn.UpsamplingNearest2d(scale_factor=(0.5, 1.7)),
                                       (2, 3, 6, 5)),
    "UpsamplingNearest2d size pair": (lambda: nn.UpsamplingNearest2d(size=(7, 3)), (2, 3, 4, 5)),
    "Upsample size int": (lambda: nn.Upsample(size=5), (3, 2, 3, 7)),
    "Upsample 3": (lambda: nn.Upsample(scale_factor=3), (2, 3, 4, 5)),
    "Upsample (1, 41)": (lambda: nn.Upsample(scale_factor=(1, 41)), (2, 3, 2, 2)),
    "Upsample recompute 1.7": (lambda: nn.Upsample(scale_factor=1.7, recompute_scale_factor=True),
                               (2, 3, 5, 4)),
}


@pytest.mark.parametrize("name", ROUND_TRIPS)
def test_from_torch_and_to_torch_give_identical_outputs(name):
    make, shape = ROUND_TRIPS[name]
    twin = make()
    layer = sn.from_torch(twin)
    assert isinstance(layer, sn.NearestUpsampling)
    assert (layer.size, layer.scale_factor) == (twin.size, twin.scale_factor)
    back = sn.to_torch(layer)
    assert isinstance(back, nn.UpsamplingNearest2d)
    assert (back.size, back.scale_factor, back.recompute_scale_factor) == (
        twin.size, twin.scale_factor, twin.recompute_scale_factor)
    x = make_tensor(shape, 0)
    y = layer(x)
    assert torch.equal(y, twin(x)) and torch.equal(y, back(x))
    g = make_tensor(tuple(y.shape), 1)
    with torch.enable_grad():
        xt = x.clone().requires_grad_(True)
        twin(xt).backward(g)
    assert_close(layer.backward(g), xt.grad, **TOL)


@pytest.mark.parametrize("impl", impls)
@given(shape=shapes(), slope=st.one_of(negative_slopes, st.sampled_from([0.0, 1.0, -1.0, 3.0])),
       inplace=st.booleans(), data=st.data())
def test_leaky_relu_in_place_or_not_matches_torch(impl, shape, slope, inplace, data):
    """inplace=True writes x and returns it; the gradient, read from y, is torch's; after an
    in-place forward with a negative slope backward refuses, as torch's does."""
    x = data.draw(tensors(shape), label="x") * data.draw(st.sampled_from([1.0, 10.0]))
    x[(0,) * x.dim()] = 0.0
    original = x.clone()
    layer = sn.LeakyReLU(slope, inplace)
    layer.impl = impl
    y = layer(x)
    assert (y is x) == inplace
    assert inplace or torch.equal(x, original)
    with torch.enable_grad():
        xt = original.clone().requires_grad_(True)
        yt = nn.LeakyReLU(slope, inplace=inplace)(xt.clone())
    assert_close(y, yt.detach(), **TOL)
    g = data.draw(tensors(tuple(y.shape)), label="grad_output")
    if inplace and slope < 0:
        with pytest.raises(RuntimeError, match="in-place forward with a negative slope"):
            layer.backward(g)
        with pytest.raises(RuntimeError, match="negative slope"), torch.enable_grad():
            yt.backward(g)
        return
    grad = layer.backward(g)
    with torch.enable_grad():
        yt.backward(g)
    assert_close(grad, xt.grad, **TOL)


def test_leaky_relu_in_place_inside_a_network_matches_torch():
    """In place after a convolution: the convolution's output is overwritten, and the whole
    network's gradients are still torch's."""
    net = sn.Sequential(sn.Conv2d(2, 3, 3, padding=1), sn.LeakyReLU(0.1, inplace=True),
                        sn.NearestUpsampling(scale_factor=1.5), sn.Conv2d(3, 2, 3)).double()
    twin = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.LeakyReLU(0.1, inplace=True),
                         nn.UpsamplingNearest2d(scale_factor=1.5), nn.Conv2d(3, 2, 3)).double()
    twin.load_state_dict(net.state_dict())
    assert repr(net[1]) == repr(twin[1]) == "LeakyReLU(negative_slope=0.1, inplace=True)"
    x = make_tensor((2, 2, 5, 4), 0)
    y = net(x)
    g = make_tensor(tuple(y.shape), 1)
    with torch.enable_grad():
        xt = x.clone().requires_grad_(True)
        yt = twin(xt)
        yt.backward(g)
    assert_close(y, yt.detach(), **TOL)
    assert_close(net.backward(g), xt.grad, **TOL)
    for (name, p), q in zip(net.named_parameters(), twin.parameters()):
        assert_close(p.grad, q.grad, **TOL, msg=name)


def test_identity_accepts_and_ignores_any_arguments():
    layer = sn.Identity(54, "unused", unused_argument1=0.1, unused_argument2=False)
    x, g = make_tensor((2, 3, 4), 0), make_tensor((2, 3, 4), 1)
    assert torch.equal(layer(x), x) and torch.equal(layer.backward(g), g)
    assert repr(layer) == repr(nn.Identity(54, "unused")) == "Identity()"
    assert isinstance(sn.from_torch(nn.Identity(3, unused=True)), sn.Identity)


def test_gradcheck_checks_the_first_output_of_a_tuple():
    """MaxPool2d(return_indices=True) returns (y, indices): gradcheck checks y against torch and
    finite differences, and still fails a wrong backward."""
    x = make_tensor((2, 3, 7, 6), 0, distinct=True)
    report = sn.gradcheck(sn.MaxPool2d(3, 2, 1, return_indices=True), x)
    report.assert_passed()
    assert {(r.reference, r.name, r.shape) for r in report.rows} == {
        ("torch", "output", (2, 3, 4, 3)), ("torch", "grad input", (2, 3, 7, 6)),
        ("finite-d", "grad input", (2, 3, 7, 6))}

    class Doubled(sn.MaxPool2d):
        def backward(self, grad_output):
            return 2 * super().backward(grad_output)

    broken = sn.gradcheck(Doubled(3, 2, 1, return_indices=True), x)
    assert not broken.passed
    assert {r.name for r in broken.rows if not r.passed} == {"grad input"}


def test_gradcheck_of_an_in_place_layer_leaves_x_alone():
    x = make_tensor((2, 3, 4), 0)
    before = x.clone()
    sn.gradcheck(sn.LeakyReLU(0.2, inplace=True), x).assert_passed()
    sn.gradcheck(sn.LeakyReLU(1.5, inplace=True), x).assert_passed()
    assert torch.equal(x, before)
