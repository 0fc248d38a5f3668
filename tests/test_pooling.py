"""MaxPool2d with every torch argument (dilation, ceil_mode, return_indices, unbatched input) and
MaxUnpool2d, against torch.nn in float64 with random upstream gradients: outputs, indices and
input gradients equal; ties and NaNs resolved as torch does; clear errors for what torch rejects
or leaves undefined."""
from __future__ import annotations

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import as_pair, int_or_pair, make_tensor, seeds, tensors
from torch import Tensor, nn
from torch.testing import assert_close

import scratchnet as sn
from scratchnet.pooling import pool_output_size

TOL = {"rtol": 1e-12, "atol": 1e-12}


@st.composite
def pool_configs(draw: st.DrawFn) -> tuple[tuple, tuple[int, ...]]:
    """(kernel_size, stride, padding, dilation, return_indices, ceil_mode) and an input shape,
    batched (N > 1) or not, C > 1, H ≠ W, whose every window meets the input."""
    kernel = draw(int_or_pair(1, 3), label="kernel_size")
    stride = draw(st.one_of(st.none(), int_or_pair(1, 3)), label="stride")
    padding = tuple(draw(st.integers(0, k // 2)) for k in as_pair(kernel))
    dilation = draw(int_or_pair(1, 3), label="dilation")
    h = draw(st.integers(1, 9), label="H")
    w = draw(st.integers(1, 9).filter(lambda w: w != h), label="W")
    args = (kernel, stride, padding, dilation, draw(st.booleans(), label="return_indices"),
            draw(st.booleans(), label="ceil_mode"))
    for size, k, s, p, d in zip((h, w), as_pair(kernel), as_pair(stride or kernel), padding,
                                as_pair(dilation)):
        out = pool_output_size(size, k, s, p, d, args[-1])
        assume(out >= 1)
        assume(all(any(0 <= o * s - p + j * d < size for j in range(k)) for o in range(out)))
    lead = draw(st.sampled_from([(), (2,), (3,)]), label="batch")
    return args, (*lead, draw(st.integers(2, 3), label="C"), h, w)


def torch_pool(args: tuple, x: Tensor, g: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """torch's (y, indices, dL/dx) for upstream gradient g."""
    xt = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        y, indices = nn.MaxPool2d(*args[:4], return_indices=True, ceil_mode=args[5])(xt)
        y.backward(g)
    return y.detach(), indices, xt.grad


def check_pool(args: tuple, x: Tensor, data: st.DataObject) -> None:
    layer = sn.MaxPool2d(*args)
    out = layer(x)
    y, indices = out if args[4] else (out, None)
    g = data.draw(tensors(tuple(y.shape)), label="grad_output")
    y_t, indices_t, grad_t = torch_pool(args, x, g)
    assert_close(y, y_t, **TOL, equal_nan=True)
    if indices is not None:
        assert torch.equal(indices, indices_t)
    assert_close(layer.backward(g), grad_t, **TOL)


@given(cfg=pool_configs(), values=st.sampled_from(["normal", "ties", "-inf"]), data=st.data())
def test_maxpool2d_matches_torch(cfg, values, data):
    """Every argument, batched and unbatched. Whole numbers make equal maxima common (torch
    takes the first, and so does its gradient); with "-inf", a window's maximum may be −∞ and
    must still be an element of x, never the padding."""
    args, shape = cfg
    x = data.draw(tensors(shape), label="x")
    if values != "normal":
        x = x.round()
    if values == "-inf":
        x[x < 0] = float("-inf")
    check_pool(args, x, data)


@given(cfg=pool_configs(), seed=seeds)
def test_maxpool2d_on_integers_matches_torch(cfg, seed):
    args, shape = cfg
    x = torch.randint(-3, 3, shape, generator=torch.Generator().manual_seed(seed))
    out, expected = sn.MaxPool2d(*args)(x), nn.MaxPool2d(*args)(x)
    if args[4]:
        assert torch.equal(out[0], expected[0]) and torch.equal(out[1], expected[1])
    else:
        assert torch.equal(out, expected)


@given(cfg=pool_configs(), seed=seeds, data=st.data())
def test_maxpool2d_nan_wins_as_in_torch(cfg, seed, data):
    """A NaN is the maximum of its window; of several, torch reports the last."""
    args, shape = cfg
    x = make_tensor(shape, seed)
    x[torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < 0.3] = float("nan")
    check_pool(args, x, data)


def test_maxpool2d_ceil_mode_drops_a_window_starting_in_the_padding():
    """H = 5, kernel 2, stride 2, padding 1: ceil would give 4 windows, the last starting at
    row 5 (the right padding), so torch keeps 3; the same for scratchnet."""
    layer = sn.MaxPool2d(2, 2, 1, ceil_mode=True)
    x = torch.arange(25.0).reshape(1, 1, 5, 5)
    assert layer(x).shape == nn.MaxPool2d(2, 2, 1, ceil_mode=True)(x).shape == (1, 1, 3, 3)


def test_maxpool2d_unbatched_returns_unbatched_indices_and_gradient():
    x = make_tensor((3, 5, 4), 0)
    y, indices = sn.MaxPool2d(2, return_indices=True)(x)
    assert y.shape == indices.shape == (3, 2, 2)
    expected_y, expected_i = nn.MaxPool2d(2, return_indices=True)(x)
    assert torch.equal(y, expected_y) and torch.equal(indices, expected_i)


def test_maxpool2d_signature_repr_and_interop():
    layer = sn.MaxPool2d(3, 2, 1, 2, True, True)
    assert (layer.kernel_size, layer.stride, layer.padding, layer.dilation) == \
        ((3, 3), (2, 2), (1, 1), (2, 2))
    assert layer.return_indices and layer.ceil_mode
    assert repr(layer) == ("MaxPool2d(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), "
                           "dilation=(2, 2), return_indices=True, ceil_mode=True)")
    assert repr(sn.MaxPool2d(2)) == "MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))"
    twin = sn.to_torch(layer)
    assert (twin.dilation, twin.return_indices, twin.ceil_mode) == ((2, 2), True, True)
    assert repr(sn.from_torch(twin)) == repr(layer)


@pytest.mark.parametrize("make, shape, fragments", [
    (lambda: sn.MaxPool2d(2), (4, 5), ("MaxPool2d(kernel_size=(2, 2)", "3-D (C, H, W) or 4-D",
                                       "(4, 5)")),
    (lambda: sn.MaxPool2d(2), (1, 2, 3, 4, 5), ("3-D (C, H, W) or 4-D", "(1, 2, 3, 4, 5)")),
    (lambda: sn.MaxPool2d(3), (2, 2, 5), ("too small", "(2, 2, 5)")),
    (lambda: sn.MaxPool2d(2, 1, 1, dilation=3), (1, 2, 2, 2),
     ("dilation=(3, 3)", "entirely in the padding along H", "(1, 2, 2, 2)",
      "reduce padding or dilation")),
])
def test_maxpool2d_input_errors(make, shape, fragments):
    with pytest.raises(ValueError) as info:
        make()(torch.zeros(shape))
    assert all(f in str(info.value) for f in fragments), str(info.value)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"kernel_size": 2, "padding": 2}, "padding (2, 2) must be at most half of kernel_size"),
    ({"kernel_size": 2, "stride": 0}, "stride (0, 0)"),
    ({"kernel_size": 2, "dilation": 0}, "dilation (0, 0)"),
    ({"kernel_size": (2, 2, 2)}, "kernel_size must be an int or a pair"),
])
def test_maxpool2d_argument_errors(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        sn.MaxPool2d(**kwargs)


def test_maxpool2d_backward_checks_the_gradient_shape():
    layer = sn.MaxPool2d(2)
    layer(torch.zeros(3, 4, 6))
    with pytest.raises(ValueError, match=r"\(3, 2, 4\) does not match the output shape "
                                         r"\(3, 2, 3\)"):
        layer.backward(torch.zeros(3, 2, 4))


@st.composite
def unpool_configs(draw: st.DrawFn) -> tuple[tuple, tuple[int, ...], bool]:
    """(kernel_size, stride, padding), an input shape for the pooling before, and whether to
    ask for that input's size back (`output_size`)."""
    kernel = draw(int_or_pair(1, 3), label="kernel_size")
    stride = draw(st.one_of(st.none(), int_or_pair(1, 3)), label="stride")
    padding = tuple(draw(st.integers(0, k // 2)) for k in as_pair(kernel))
    sizes = []
    for k, p, s in zip(as_pair(kernel), padding, as_pair(stride or kernel)):
        sizes.append(draw(st.integers(max(1, k - 2 * p), 9)))
        assume((sizes[-1] + 2 * p - k) // s * s - 2 * p + k >= 1)
    lead = draw(st.sampled_from([(), (2,), (3,)]), label="batch")
    return ((kernel, stride, padding), (*lead, draw(st.integers(2, 3)), *sizes),
            draw(st.booleans(), label="output_size"))


@given(cfg=unpool_configs(), ties=st.booleans(), data=st.data())
def test_maxunpool2d_matches_torch(cfg, ties, data):
    """Indices from torch's pooling (repeated ones when windows overlap), with and without
    output_size; where torch rejects output_size or an index, so does scratchnet."""
    args, shape, give_size = cfg
    x = data.draw(tensors(shape), label="x")
    pooled, indices = nn.MaxPool2d(*args, return_indices=True)(x.round() if ties else x)
    size = shape[-2:] if give_size else None
    layer = sn.MaxUnpool2d(*args)
    try:
        expected = nn.MaxUnpool2d(*args)(pooled, indices, output_size=size)
    except (ValueError, RuntimeError) as error:
        fragment = "output_size" if isinstance(error, ValueError) else "indices must lie in"
        with pytest.raises(ValueError, match=fragment):
            layer(pooled, indices, output_size=size)
        return
    y = layer(pooled, indices, output_size=size)
    assert torch.equal(y, expected)
    g = data.draw(tensors(tuple(y.shape)), label="grad_output")
    pt = pooled.clone().requires_grad_(True)
    with torch.enable_grad():
        nn.MaxUnpool2d(*args)(pt, indices, output_size=size).backward(g)
    assert_close(layer.backward(g), pt.grad, **TOL)


def test_maxunpool2d_accepts_a_full_output_size_and_unbatched_input():
    x, indices = nn.MaxPool2d(2, return_indices=True)(make_tensor((2, 3, 5, 7), 0))
    y = sn.MaxUnpool2d(2)(x, indices, output_size=(2, 3, 5, 7))
    assert torch.equal(y, nn.MaxUnpool2d(2)(x, indices, output_size=(2, 3, 5, 7)))
    assert torch.equal(sn.MaxUnpool2d(2)(x[0], indices[0], output_size=(5, 7)), y[0])


LABEL = "MaxUnpool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))"


@pytest.mark.parametrize("x, indices, size, fragments", [
    (torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 1, dtype=torch.long), None,
     ("int64 tensor of the input's shape (1, 1, 2, 2)", "torch.int64 of shape (1, 1, 2, 1)")),
    (torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2, dtype=torch.int32), None,
     ("torch.int32",)),
    (torch.ones(1, 1, 2, 2), torch.tensor([[[[0, 1], [2, 16]]]]), None,
     ("indices must lie in [0, 16)", "4×4", "0 … 16")),
    (torch.tensor([[[[1.0, 2.0]]]]), torch.tensor([[[[0, 0]]]]), None,
     ("repeat a position with different values",)),
    (torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2, dtype=torch.long), (6, 4),
     ("output_size (6, 4)", "within ±stride (2, 2) of (4, 4)")),
    (torch.ones(2, 2), torch.zeros(2, 2, dtype=torch.long), None,
     ("3-D (C, H, W) or 4-D", "(2, 2)")),
])
def test_maxunpool2d_errors(x, indices, size, fragments):
    with pytest.raises(ValueError) as info:
        sn.MaxUnpool2d(2)(x, indices, output_size=size)
    message = str(info.value)
    assert message.startswith(LABEL) and all(f in message for f in fragments), message


def test_maxunpool2d_backward_checks_the_gradient_shape():
    layer = sn.MaxUnpool2d(2)
    layer(torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2, dtype=torch.long) + 5)
    with pytest.raises(ValueError, match=r"\(1, 1, 4, 5\) does not match the output shape"):
        layer.backward(torch.zeros(1, 1, 4, 5))


def test_maxunpool2d_on_an_empty_batch():
    x, indices = torch.zeros(0, 3, 2, 3), torch.zeros(0, 3, 2, 3, dtype=torch.long)
    layer = sn.MaxUnpool2d(2)
    y = layer(x, indices)
    assert y.shape == nn.MaxUnpool2d(2)(x, indices).shape == (0, 3, 4, 6)
    assert layer.backward(torch.ones_like(y)).shape == x.shape
