"""Every fast path computes what the straightforward formulation computes (float64, Hypothesis-drawn
shapes including non-square and odd sizes, several memory layouts), and what torch computes:

- im2col / col2im: one strided copy, rows in (C, kh, kw) or channels-last (kh, kw, C) order, and a
  single copy (no additions) when windows do not overlap — against F.unfold / F.fold;
- shifted_conv: a stride-1 convolution as matrix products of shifted row ranges, no patch matrix
  — against torch's conv2d and autograd;
- Conv2d and Upsampling (the phase decomposition), impl "fast" against "reference" against torch;
- Winograd F(2×2, 3×3) for 3×3 stride-1 Conv2d: even and odd output sizes, paddings 0–2, and
  the batch size from which it is taken;
- the channels-last backward's input gradient as a convolution of the output gradient with the
  flipped kernel (stride 1), through every drawn Conv2d;
- ReLU's derivative sign(y) against the indicator y > 0; LeakyReLU as max(x, slope·x) with
  derivative max(sign(y), slope), or in training as f'(x)·x with f'(x) = max(sign(x), slope)
  kept for backward, and Sigmoid, against the reference formulas and torch;
- Adam's torch._foreach_* step against its per-parameter step and torch.optim.Adam, and its
  flat moment buffers bit for bit against torch.optim.Adam, rebuilt after a load or a move;
- one whole train step of every shipped model, fast against reference against torch.
The benchmark that measures these paths runs in its --quick form.
"""
from __future__ import annotations

import contextlib
import copy
import io
import subprocess
import sys
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from strategies import adam_kwargs, make_tensor, seeds, tensors
from torch.testing import assert_close

import scratchnet as sn
from scratchnet import winograd
from scratchnet.optim import adam as adam_module
from scratchnet.im2col import (
    col2im,
    col2im_strided,
    im2col,
    im2col_strided,
    shifted_conv,
    shifted_conv_backward,
)
from scratchnet.impl import IMPLS, LEVERS, lever_on, levers_off
from scratchnet.models import MODELS, build_model
from scratchnet.upsampling import phase_plan, phases_interleaved
from scratchnet.winograd import WinogradSaved

TOL = {"rtol": 1e-10, "atol": 1e-10}
LAYOUTS = ("contiguous", "channels_last", "strided", "transposed")


def pairs(low: int, high: int) -> st.SearchStrategy:
    return st.tuples(st.integers(low, high), st.integers(low, high))


@st.composite
def lowerings(draw: st.DrawFn) -> dict:
    """kernel, stride, padding, dilation and an input (N, C, H, W) with H ≠ W, at least one
    output pixel; stride = kernel (windows that tile the input) is drawn often."""
    kernel = draw(pairs(1, 3), label="kernel")
    stride = draw(st.one_of(st.just(kernel), pairs(1, 4)), label="stride")
    padding, dilation = draw(pairs(0, 2), label="padding"), draw(pairs(1, 2), label="dilation")
    low = [max(1, d * (k - 1) + 1 - 2 * p) for k, p, d in zip(kernel, padding, dilation)]
    h = draw(st.integers(low[0], low[0] + 6), label="H")
    w = draw(st.integers(low[1], low[1] + 6).filter(lambda w: w != h), label="W")
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 4)), h, w)
    return {"kernel": kernel, "stride": stride, "padding": padding, "dilation": dilation,
            "shape": shape}


@pytest.mark.parametrize("channels_last", [False, True])
@given(cfg=lowerings(), layout=st.sampled_from(LAYOUTS), seed=seeds)
def test_im2col_and_col2im_equal_unfold_and_fold(channels_last, cfg, layout, seed):
    args = (cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"])
    x = make_tensor(cfg["shape"], seed, layout)
    c, (kh, kw) = cfg["shape"][1], cfg["kernel"]
    order = to_channels_last if channels_last else (lambda m, c, kh, kw: m)
    fast = im2col_strided(x, *args, channels_last=channels_last)
    assert_close(fast, order(im2col(x, *args, impl="reference"), c, kh, kw), rtol=0, atol=0)
    assert torch.equal(im2col(x, *args), im2col_strided(x, *args))
    cols = make_tensor(tuple(fast.shape), seed + 1)
    back = col2im_strided(cols, cfg["shape"], *args, channels_last=channels_last)
    plain = to_channels_first(cols, c, kh, kw) if channels_last else cols
    assert_close(back, col2im(plain, cfg["shape"], *args, impl="reference"), **TOL)


def to_channels_last(cols: torch.Tensor, c: int, kh: int, kw: int) -> torch.Tensor:
    """Rows ordered (C, kh, kw) → (kh, kw, C)."""
    return cols.view(-1, c, kh, kw).permute(0, 2, 3, 1).reshape(cols.shape)


def to_channels_first(cols: torch.Tensor, c: int, kh: int, kw: int) -> torch.Tensor:
    """Rows ordered (kh, kw, C) → (C, kh, kw)."""
    return cols.view(-1, kh, kw, c).permute(0, 3, 1, 2).reshape(cols.shape)


@given(cfg=lowerings(), seed=seeds)
def test_channels_last_rows_are_a_column_permutation(cfg, seed):
    """Row r of the channels-last matrix holds the values of row r, (kh, kw, C) instead of
    (C, kh, kw): what `weight.permute(0, 2, 3, 1)` pairs with."""
    args = (cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"])
    x = make_tensor(cfg["shape"], seed)
    c, (kh, kw) = cfg["shape"][1], cfg["kernel"]
    assert torch.equal(im2col_strided(x, *args, channels_last=True),
                       to_channels_last(im2col(x, *args), c, kh, kw))


@st.composite
def shifted_convs(draw: st.DrawFn) -> dict:
    kernel, dilation = draw(pairs(1, 3), label="kernel"), draw(pairs(1, 2), label="dilation")
    low = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    return {"kernel": kernel, "dilation": dilation,
            "size": (draw(st.integers(low[0], low[0] + 5)), draw(st.integers(low[1], low[1] + 5))),
            "n": draw(st.integers(1, 3)), "c_in": draw(st.integers(1, 4)),
            "c_out": draw(st.integers(1, 4)), "bias": draw(st.booleans())}


@given(cfg=shifted_convs(), seed=seeds)
def test_shifted_conv_is_a_stride_1_convolution(cfg, seed):
    """Forward on the output pixels, and both gradients, against torch's conv2d + autograd."""
    (kh, kw), (dh, dw), (hp, wp) = cfg["kernel"], cfg["dilation"], cfg["size"]
    n, c_in, c_out = cfg["n"], cfg["c_in"], cfg["c_out"]
    ho, wo = hp - dh * (kh - 1), wp - dw * (kw - 1)
    rows = make_tensor((n * hp * wp, c_in), seed)
    taps = make_tensor((kh, kw, c_in, c_out), seed + 1)
    bias = make_tensor((c_out,), seed + 2) if cfg["bias"] else None
    grad_valid = make_tensor((n, ho, wo, c_out), seed + 3)

    out = shifted_conv(rows, wp, taps, bias, (dh, dw)).view(n, hp, wp, c_out)
    grad = torch.zeros(n, hp, wp, c_out, dtype=torch.float64)
    grad[:, :ho, :wo] = grad_valid
    grad_rows, grad_taps = shifted_conv_backward(grad.view(-1, c_out), rows, wp, taps, (dh, dw))

    with torch.enable_grad():
        xt = rows.view(n, hp, wp, c_in).permute(0, 3, 1, 2).contiguous().requires_grad_(True)
        wt = taps.permute(3, 2, 0, 1).contiguous().requires_grad_(True)
        yt = F.conv2d(xt, wt, bias, dilation=(dh, dw))
        yt.backward(grad_valid.permute(0, 3, 1, 2))
    assert_close(out[:, :ho, :wo], yt.detach().permute(0, 2, 3, 1), **TOL)
    assert_close(grad_rows.view(n, hp, wp, c_in), xt.grad.permute(0, 2, 3, 1), **TOL)
    assert_close(grad_taps, wt.grad.permute(2, 3, 1, 0), **TOL)


def train_once(layer: sn.Module, x: torch.Tensor, grad: torch.Tensor, impl: str) -> list:
    """[output, input gradient, every parameter gradient] with every layer's impl set."""
    for m in layer.modules():
        if "impl" in vars(m):
            m.impl = impl
    layer.zero_grad()
    y = layer(x)
    return [y, layer.backward(grad)] + [p.grad.clone() for p in layer.parameters()]


def torch_grads(layer: sn.Module, x: torch.Tensor, grad: torch.Tensor) -> list:
    twin = sn.to_torch(layer)
    with torch.enable_grad():
        xt = x.clone().requires_grad_(True)
        yt = twin(xt)
        yt.backward(grad)
    return [yt.detach(), xt.grad] + [p.grad for p in twin.parameters()]


def assert_fast_reference_torch_agree(layer: sn.Module, x: torch.Tensor, seed: int) -> None:
    with sn.no_grad():
        shape = tuple(layer(x).shape)
    grad = make_tensor(shape, seed, "channels_last" if len(shape) == 4 else "contiguous")
    fast = train_once(layer, x, grad, "fast")
    reference = train_once(layer, x, grad, "reference")
    names = ["output", "grad input"] + [f"grad {n}" for n, _ in layer.named_parameters()]
    for name, a, b, c in zip(names, fast, reference, torch_grads(layer, x, grad), strict=True):
        assert_close(a, b, **TOL, msg=lambda m, n=name: f"fast vs reference, {n}: {m}")
        assert_close(a, c, **TOL, msg=lambda m, n=name: f"fast vs torch, {n}: {m}")


@st.composite
def conv_layers(draw: st.DrawFn) -> tuple[sn.Conv2d, tuple[int, ...]]:
    """Conv2d with any hyper-parameters (groups too); stride = kernel, as in the course, often."""
    groups = draw(st.sampled_from([1, 1, 2]), label="groups")
    c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    cfg = draw(lowerings())
    layer = sn.Conv2d(c_in, c_out, cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"],
                      groups, bias=draw(st.booleans()), dtype=torch.float64)
    return layer, (cfg["shape"][0], c_in, *cfg["shape"][2:])


@st.composite
def upsampling_layers(draw: st.DrawFn) -> tuple[sn.Upsampling, tuple[int, ...]]:
    """Upsampling with non-square scales, kernels and paddings; stride and dilation 1 (the phase
    decomposition) unless drawn otherwise."""
    kernel, scale = draw(pairs(1, 4), label="kernel"), draw(pairs(1, 3), label="scale")
    padding = draw(pairs(0, 2), label="padding")
    stride = draw(st.one_of(st.just((1, 1)), pairs(1, 2)), label="stride")
    dilation = draw(st.one_of(st.just((1, 1)), pairs(1, 2)), label="dilation")
    low = [max(1, -(-(d * (k - 1) + 1 - 2 * p) // s))
           for k, s, p, d in zip(kernel, scale, padding, dilation)]
    h = draw(st.integers(low[0], low[0] + 4), label="H")
    w = draw(st.integers(low[1], low[1] + 4).filter(lambda w: w != h), label="W")
    c_in, c_out = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    layer = sn.Upsampling(c_in, c_out, kernel, scale, stride, padding, dilation,
                          bias=draw(st.booleans()), dtype=torch.float64)
    return layer, (draw(st.integers(1, 3)), c_in, h, w)


@given(drawn=conv_layers(), layout=st.sampled_from(LAYOUTS), seed=seeds)
def test_conv2d_fast_equals_reference_and_torch(drawn, layout, seed):
    layer, shape = drawn
    assert_fast_reference_torch_agree(layer, make_tensor(shape, seed, layout), seed + 1)


@given(drawn=upsampling_layers(), layout=st.sampled_from(LAYOUTS), seed=seeds)
def test_upsampling_fast_equals_reference_and_torch(drawn, layout, seed):
    layer, shape = drawn
    assert_fast_reference_torch_agree(layer, make_tensor(shape, seed, layout), seed + 1)


@st.composite
def winograd_convs(draw: st.DrawFn) -> tuple[sn.Conv2d, tuple[int, ...]]:
    """3×3 stride-1 Conv2d (the Winograd path) with paddings 0–2, even and odd output sizes."""
    padding = draw(st.one_of(st.integers(0, 2), pairs(0, 2)), label="padding")
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    h = draw(st.integers(max(1, 3 - 2 * ph), 9), label="H")
    w = draw(st.integers(max(1, 3 - 2 * pw), 9).filter(lambda w: w != h), label="W")
    c_in, c_out = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    layer = sn.Conv2d(c_in, c_out, 3, padding=padding, bias=draw(st.booleans()),
                      dtype=torch.float64)
    return layer, (draw(st.integers(1, 3)), c_in, h, w)


@given(drawn=winograd_convs(), layout=st.sampled_from(LAYOUTS), seed=seeds)
def test_winograd_conv2d_equals_reference_and_torch(drawn, layout, seed):
    """With winograd.MIN_ROWS lowered to 1, so that these small batches take it."""
    layer, shape = drawn
    x = make_tensor(shape, seed, layout)
    with mock.patch.object(winograd, "MIN_ROWS", 1):
        layer(x)
        assert isinstance(layer.saved["cols"], WinogradSaved)
        assert_fast_reference_torch_agree(layer, x, seed + 1)


@pytest.mark.parametrize("batch, winograd_expected", [(63, False), (64, True)])
def test_winograd_takes_batches_of_at_least_min_rows_output_pixels(batch, winograd_expected):
    """4×4 outputs: 16 pixels an image, so MIN_ROWS = 1024 is reached at batch 64."""
    layer = sn.Conv2d(2, 2, 3, padding=1)
    layer(torch.randn(batch, 2, 4, 4))
    assert isinstance(layer.saved["cols"], WinogradSaved) == winograd_expected


@pytest.mark.parametrize("size, scale, kernel, padding, one_copy", [
    ((4, 6), (2, 2), (3, 3), (1, 1), True),         # the models' Upsampling layers
    ((4, 3), (3, 2), (4, 1), (0, 0), True),         # offsets 0, 0, 0 along H
    ((5, 4), (2, 2), (2, 3), (0, 1), False),        # along H, phases of 5 and 4 rows
    ((4, 5), (2, 3), (3, 3), (1, 1), False),        # along W, offsets 0, 1, 1: not a stride
])
def test_phases_interleave_in_one_copy_when_their_offsets_are_a_stride(size, scale, kernel,
                                                                        padding, one_copy):
    """z's phase outputs, read through `phases_interleaved`, are the output pixels the per-phase
    slices give; None exactly when the plans do not allow one strided view."""
    plans = tuple(phase_plan(*args) for args in zip(size, scale, kernel, padding))
    (ph, pw), n, c = plans, 2, 3
    hp, wp = (size[0] + ph.pad_before + ph.pad_after, size[1] + pw.pad_before + pw.pad_after)
    z = torch.randn(n, hp, wp, *scale, c)
    view = phases_interleaved(z, plans)
    assert (view is not None) == one_copy
    if one_copy:
        y = view.reshape(n, ph.out, pw.out, c)
        for a, b, rows, cols in sn.Upsampling._phase_slices(plans):
            assert torch.equal(y[:, a::scale[0], b::scale[1]], z[:, rows, cols, a, b])


@pytest.mark.parametrize("layer", [sn.LeakyReLU(0.1), sn.LeakyReLU(0.0), sn.LeakyReLU(1.0),
                                   sn.LeakyReLU(-0.5), sn.LeakyReLU(2.0), sn.Sigmoid()],
                         ids=["leaky 0.1", "leaky 0", "leaky 1", "leaky -0.5 (reference only)",
                              "leaky 2 (reference only)", "sigmoid"])
@given(layout=st.sampled_from(LAYOUTS), seed=seeds)
def test_activations_fast_equal_reference_and_torch(layer, layout, seed):
    """Exact zeros included (x = 0 takes the slope in both, as in torch)."""
    x = make_tensor((3, 4, 5, 2), seed, layout)
    x.masked_fill_(x.abs() < 0.2, 0)
    assert_fast_reference_torch_agree(layer, x, seed + 1)


def identical(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal values, NaN where the other has NaN, and the same sign on every zero."""
    nan = a.isnan()
    return (torch.equal(nan, b.isnan()) and torch.equal(a[~nan], b[~nan])
            and torch.equal(a[~nan].signbit(), b[~nan].signbit()))


@pytest.mark.parametrize("slope", [0.1, 0.0, 1.0])
def test_leaky_relu_training_forward_keeps_only_its_derivative(slope):
    """In training, forward computes f'(x) = max(sign(x), slope) and y = f'(x)·x, keeps f'(x)
    alone, and backward multiplies by it; inside no_grad, y = max(x, slope·x). Both equal
    torch bit for bit, on ±0, ±inf and NaN too, and so does the in-place layer (max(x, 0·x)
    would make +inf NaN at slope 0)."""
    x = torch.tensor([[-2.5, -0.0, 0.0, 1e-30, -1e-30, 3.0, float("inf"), -float("inf"),
                       float("nan")]]).repeat(3, 1)
    g = torch.randn(x.shape)
    with torch.enable_grad():
        xt = x.clone().requires_grad_(True)
        yt = torch.nn.functional.leaky_relu(xt, slope)
        yt.backward(g)
    layer = sn.LeakyReLU(slope)
    assert identical(layer(x), yt.detach())
    assert set(layer.saved) == {"slope"}
    assert identical(layer.backward(g), xt.grad)
    with sn.no_grad():
        assert identical(layer(x), yt.detach())
    in_place = sn.LeakyReLU(slope, inplace=True)
    for mode in (sn.no_grad, contextlib.nullcontext):
        z = x.clone()
        with mode():
            assert in_place(z) is z
        assert identical(z, yt.detach())
    assert identical(in_place.backward(g), xt.grad)


@pytest.mark.parametrize("layer, shape", [
    (sn.Conv2d(3, 8, 2, stride=2), (2, 3, 10, 6)),
    (sn.Conv2d(8, 8, 2, stride=2), (2, 8, 5, 7)),
    (sn.Upsampling(8, 8, 3, padding=1), (2, 8, 3, 5)),
    (sn.Upsampling(8, 3, 3, padding=1), (2, 8, 6, 1)),
    (sn.Conv2d(8, 6, 3, padding=1), (2, 8, 5, 4)),
], ids=["course conv 1", "course conv 2, odd size", "course upsampling 1", "course upsampling 2",
        "unet 3×3 conv, odd size"])
def test_course_layers_fast_equal_reference_and_torch(layer, shape):
    assert_fast_reference_torch_agree(layer.double(), make_tensor(shape, 0, "channels_last"), 1)


@given(x=tensors((2, 3, 4, 5)), g=tensors((2, 3, 4, 5)))
def test_relu_derivative_is_the_indicator_of_a_positive_output(x, g):
    x = torch.where(x.abs() < 0.3, torch.zeros_like(x), x)          # exact zeros: derivative 0
    relu = sn.ReLU()
    y = relu(x)
    dx = relu.backward(g)
    assert torch.equal(dx, g * (y > 0).to(g.dtype))
    with torch.enable_grad():
        xt = x.clone().requires_grad_(True)
        torch.relu(xt).backward(g)
    assert torch.equal(dx, xt.grad)


def adam_problem(seed: int, kwargs: dict) -> tuple[list[torch.Tensor], list[dict]]:
    """Parameters of several shapes in two groups (the second with its own lr)."""
    params = [make_tensor(shape, seed + i) for i, shape in enumerate([(3, 2, 2, 2), (3,), (4, 5),
                                                                       (1,)])]
    return params, [{"params": params[:3]}, {"params": params[3:], "lr": kwargs["lr"] / 2}]


@given(kwargs=adam_kwargs(), seed=seeds)
def test_adam_foreach_step_equals_per_parameter_step_and_torch(kwargs, seed):
    """Over several steps in which some parameters have no gradient (their step counts differ)."""
    runs = {}
    for impl in IMPLS:
        params, groups = adam_problem(seed, kwargs)
        opt = sn.Adam(groups, **kwargs)
        opt.impl = impl
        runs[impl] = (params, opt)
    params_t, groups_t = adam_problem(seed, kwargs)
    params_t = [p.requires_grad_(True) for p in params_t]
    opt_t = torch.optim.Adam([{**g, "params": params_t[:3] if i == 0 else params_t[3:]}
                              for i, g in enumerate(groups_t)], **kwargs)
    for step in range(6):
        grads = [None if (step + i) % 3 == 2 else make_tensor(tuple(p.shape), seed + 10 * step + i)
                 for i, p in enumerate(params_t)]
        for params, opt in runs.values():
            for p, g in zip(params, grads):
                p.grad = None if g is None else g.clone()
            opt.step()
        for p, g in zip(params_t, grads):
            p.grad = None if g is None else g.clone()
        with torch.no_grad():
            opt_t.step()
        for p_fast, p_ref, p_t in zip(runs["fast"][0], runs["reference"][0], params_t):
            assert_close(p_fast, p_ref, rtol=1e-14, atol=1e-15)
            assert_close(p_fast, p_t.detach(), **TOL)
    fast_state = runs["fast"][1].state_dict()["state"]
    assert fast_state.keys() == runs["reference"][1].state_dict()["state"].keys()
    assert [s["step"] for s in fast_state.values()] == \
        [s["step"] for s in runs["reference"][1].state_dict()["state"].values()]


def unet_params_and_torch_twins() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The U-Net's 24 float32 parameters, and copies of them that require grad."""
    torch.manual_seed(0)
    params = list(build_model("unet").parameters())
    return params, [p.detach().clone().requires_grad_(True) for p in params]


def one_buffer(tensors: list[torch.Tensor]) -> bool:
    """Whether all these tensors are views of the same memory."""
    return len({t.untyped_storage().data_ptr() for t in tensors}) == 1


@pytest.mark.parametrize("kwargs", [{}, {"weight_decay": 0.01}, {"maximize": True},
                                    {"weight_decay": 0.1, "decoupled_weight_decay": True}],
                         ids=["plain", "weight decay", "maximize", "AdamW"])
def test_adam_flat_moments_equal_torch_bit_for_bit(kwargs):
    """With all step counts equal, a group's moments live in two flat buffers (FlatMoments:
    each parameter's state tensors are views of one), and every float32 value equals
    torch.optim.Adam's exactly."""
    params, twins = unet_params_and_torch_twins()
    opt = sn.Adam(params, lr=1e-2, **kwargs)
    opt_t = torch.optim.Adam(twins, lr=1e-2, **kwargs)
    for step in range(4):
        for i, (p, q) in enumerate(zip(params, twins)):
            p.grad = make_tensor(tuple(p.shape), 100 * step + i).float() * 10.0 ** -step
            q.grad = p.grad.clone()
        opt.step()
        with torch.no_grad():
            opt_t.step()
        assert all(torch.equal(p, q.detach()) for p, q in zip(params, twins))
    states = [opt.state[p] for p in params]
    assert one_buffer([s["exp_avg"] for s in states])
    assert one_buffer([s["exp_avg_sq"] for s in states])
    for s, q in zip(states, twins):
        assert torch.equal(s["exp_avg_sq"], opt_t.state[q]["exp_avg_sq"])


def test_adam_flat_moments_follow_load_state_dict_and_to():
    """A loaded state_dict and a move to float64 give the parameters new state tensors: the next
    step rebuilds the flat buffers from them, and the run still equals torch's (through the
    load) and the per-parameter reference path's (through the move, which torch.optim does not
    follow)."""
    params, twins = unet_params_and_torch_twins()
    ref = [p.clone() for p in params]
    opt, opt_t, opt_ref = (sn.Adam(params, lr=1e-2), torch.optim.Adam(twins, lr=1e-2),
                           sn.Adam(ref, lr=1e-2))
    opt_ref.impl = "reference"

    def step(seed: int) -> None:
        for i, (p, q, r) in enumerate(zip(params, twins, ref)):
            p.grad = make_tensor(tuple(p.shape), seed + i).to(p.dtype)
            q.grad, r.grad = p.grad.clone().to(q.dtype), p.grad.clone()
        opt.step()
        opt_ref.step()
        if twins[0].dtype == params[0].dtype:
            with torch.no_grad():
                opt_t.step()

    step(0)
    opt.load_state_dict(copy.deepcopy(opt_ref.state_dict()))
    for seed in (100, 200):
        step(seed)
        assert all(torch.equal(p, q.detach()) for p, q in zip(params, twins))
    for p in params + ref:
        p.data = p.data.double()
    for seed in (300, 400):
        step(seed)
        assert all(torch.equal(p, r) for p, r in zip(params, ref))
    states = [opt.state[p] for p in params]
    assert states[0]["exp_avg"].dtype == torch.float64
    assert one_buffer([s["exp_avg"] for s in states])


def test_adam_flat_moments_one_per_group_and_released_when_parameters_leave():
    """Each group keeps its own flat buffers across steps (no rebuild while its parameters and
    step counts stay), and when a parameter stops getting gradients the rest are rebuilt while
    its state gets its own memory: the old buffer is neither kept alive nor saved whole with
    it (the checkpoint stays the size of torch's)."""
    params, twins = unet_params_and_torch_twins()
    groups = [{"params": params[:10]}, {"params": params[10:], "lr": 5e-3}]
    opt = sn.Adam(groups, lr=1e-2)
    opt_t = torch.optim.Adam([{**g, "params": twins[:10] if i == 0 else twins[10:]}
                              for i, g in enumerate(groups)], lr=1e-2)
    builds = mock.patch.object(adam_module, "FlatMoments", wraps=adam_module.FlatMoments)
    with builds as spy:
        for step in range(6):
            for i, (p, q) in enumerate(zip(params, twins)):
                grad = make_tensor(tuple(p.shape), 10 * step + i).float()
                p.grad, q.grad = (None, None) if step >= 3 and i == 0 else (grad, grad.clone())
            opt.step()
            with torch.no_grad():
                opt_t.step()
            assert all(torch.equal(p, q.detach()) for p, q in zip(params, twins))
    assert spy.call_count == 3                         # two groups, then group 0 without params[0]
    first = opt.state[params[0]]
    assert first["exp_avg"].untyped_storage().nbytes() == params[0].numel() * 4
    assert one_buffer([opt.state[p]["exp_avg"] for p in params[1:10]])
    sizes = []
    for state_dict in (opt.state_dict(), opt_t.state_dict()):
        buffer = io.BytesIO()
        torch.save(state_dict, buffer)
        sizes.append(buffer.tell())
    assert sizes[0] < 1.05 * sizes[1]


@pytest.mark.parametrize("case", ["listed twice", "large parameters", "float16"])
def test_adam_flat_moments_only_where_they_pay_and_agree(case):
    """No flat buffers for parameters listed twice (their two updates must follow each other),
    for parameters of FLAT_MAX_MEAN_SIZE values or more on average, or in half precision (where
    addcdiv rounds once): the per-parameter path runs instead."""
    torch.manual_seed(0)
    size = adam_module.FLAT_MAX_MEAN_SIZE if case == "large parameters" else 10
    params = [torch.randn(size, dtype=torch.float16 if case == "float16" else torch.float32)
              for _ in range(3)]
    listed = params + params if case == "listed twice" else params    # equal step counts
    with pytest.warns(UserWarning) if case == "listed twice" else contextlib.nullcontext():
        opt = sn.Adam(listed, lr=1e-2)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    assert not getattr(opt, "_flat", {})


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_leaky_relu_in_half_precision_equals_torch(dtype):
    """Below float32 the training forward keeps max(x, slope·x): f'(x) as a tensor would round
    the slope to the half dtype, which torch's kernel does not."""
    x = torch.randn(64, 64).to(dtype)
    layer = sn.LeakyReLU(0.01)
    assert torch.equal(layer(x), F.leaky_relu(x, 0.01))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name, kwargs", [("course", {"channels": 6}),
                                          ("unet", {"channels": 4, "depth": 2, "growth": 2})])
def test_model_train_step_equals_torch(name, kwargs, impl):
    """One whole train step (forward, MSE, backward, Adam) of each shipped model: fast and
    reference against torch."""
    torch.manual_seed(0)
    model = build_model(name, **kwargs).double()
    twin = sn.to_torch(model)
    for m in model.modules():
        if "impl" in vars(m):
            m.impl = impl
    x, target = make_tensor((3, 3, 12, 20), 1).sigmoid(), make_tensor((3, 3, 12, 20), 2).sigmoid()
    opt = sn.Adam(model.parameters(), lr=1e-2)
    opt.impl = impl
    crit = sn.MSELoss()
    loss = crit(model(x), target)
    model.backward(crit.backward())
    grads = [p.grad.clone() for p in model.parameters()]
    opt.step()
    opt_t = torch.optim.Adam(twin.parameters(), lr=1e-2)
    with torch.enable_grad():
        loss_t = F.mse_loss(twin(x), target)
        loss_t.backward()
    opt_t.step()
    assert_close(loss, loss_t.detach(), **TOL)
    for (param, p), g, q in zip(model.named_parameters(), grads, twin.parameters(), strict=True):
        assert_close(g, q.grad, **TOL, msg=lambda m, n=param: f"grad {n}: {m}")
        assert_close(p, q.detach(), **TOL, msg=lambda m, n=param: f"{n} after Adam: {m}")


def test_benchmark_quick_run_prints_every_table_of_every_model():
    """In a subprocess: the benchmark pins the process's malloc thresholds (pin_malloc)."""
    out = subprocess.run([sys.executable, "-m", "scratchnet", "benchmark", "--quick"],
                         capture_output=True, text=True, check=True, timeout=300).stdout
    assert "torch " in out and "peak memory method:" in out
    sections = {s.split(" ", 1)[0]: s for s in out.split("\nModel: ")[1:]}
    assert list(sections) == list(MODELS)
    for name, section in sections.items():
        for title in (f"Train step, {name}", f"Per layer, {name}, batch 4",
                      f"Inference peak memory, {name}"):
            assert title in section
        tables = [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines()
                  if line.startswith("|")]
        (cells,) = [row for row in tables if row[0] == "4"]
        sn_ms, torch_ms, ratio = float(cells[1]), float(cells[2]), float(cells[3])
        assert sn_ms > 0 and torch_ms > 0 and ratio == pytest.approx(sn_ms / torch_ms, rel=0.03)
        layer_rows = [row[0] for row in tables if "→ (" in row[0]]
        leaves = [m for m in build_model(name).modules() if next(m.children(), None) is None]
        assert len(layer_rows) == len(leaves) and layer_rows[0].startswith("0 Conv2d")
    assert "6 Upsampling(48→3, 3×3)  → (4, 3, 32, 32)" in sections["course"]


@pytest.mark.parametrize("name", list(MODELS))
def test_with_every_lever_off_fast_is_the_reference(name):
    """`levers_off(*LEVERS)` switches every fast path off: a train step of "fast" is then bit for bit
    the reference's, and each lever named alone is accepted; an unknown name is refused."""
    def step(model: sn.Module, optimizer: sn.Adam, x: torch.Tensor, target: torch.Tensor) -> list:
        criterion = sn.MSELoss()
        optimizer.zero_grad()
        loss = criterion(model(x), target)
        grad_x = model.backward(criterion.backward())
        optimizer.step()
        return [loss, grad_x, *[p.clone() for p in model.parameters()]]

    torch.manual_seed(0)
    fast = build_model(name)
    reference = copy.deepcopy(fast)
    for module in reference.modules():
        if hasattr(module, "impl"):
            module.impl = "reference"
    x, target = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    reference_adam = sn.Adam(reference.parameters())
    reference_adam.impl = "reference"
    expected = step(reference, reference_adam, x, target)
    with levers_off(*LEVERS):
        got = step(fast, sn.Adam(fast.parameters()), x, target)
    for a, b in zip(got, expected):
        assert torch.equal(a, b)
    for lever in LEVERS:
        with levers_off(lever):
            assert not lever_on(lever)
        assert lever_on(lever)
    with pytest.raises(ValueError, match="no fast path 'warp'"):
        with levers_off("warp"):
            pass


@pytest.mark.parametrize("lever", LEVERS)
def test_each_lever_off_alone_keeps_the_gradients(lever):
    """Any one fast path switched off, the others on, the images' gradient skipped
    (`needs_input_grad` False, as fit does): the U-Net's parameter gradients are the
    reference's."""
    torch.manual_seed(0)
    fast = build_model("unet").double()
    reference = copy.deepcopy(fast)
    for module in reference.modules():
        if hasattr(module, "impl"):
            module.impl = "reference"
    x, g = torch.rand(2, 3, 32, 32, dtype=torch.float64), torch.randn(2, 3, 32, 32, dtype=torch.float64)
    for model in (fast, reference):
        model.needs_input_grad = False
    reference(x)
    reference.backward(g)
    with levers_off(lever):
        fast(x)
        assert fast.backward(g) is None
    for (name, p), q in zip(fast.named_parameters(), reference.parameters()):
        assert_close(p.grad, q.grad, rtol=1e-10, atol=1e-12, msg=f"{lever} off: ∂L/∂{name}")
