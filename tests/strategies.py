"""Hypothesis strategies for the scratchnet tests: layer configurations, random tensors, optimizers.

Every configuration is valid for both scratchnet and torch.nn (the output is at least 1×1) and
uses batch > 1, more than one channel and a non-square input. Hyper-parameters that torch accepts
as an int or a pair are drawn in both forms. Tensors come from a drawn seed and a drawn memory
layout (contiguous, channels-last, strided slice, transposed view), minitorch style.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from hypothesis import strategies as st
from torch import Tensor

from scratchnet.impl import IMPLS

seeds = st.integers(0, 2**32 - 1)
impls = IMPLS
LAYOUTS = ("contiguous", "channels_last", "strided", "transposed")


@dataclass(frozen=True)
class LayerConfig:
    """Constructor arguments shared by the scratchnet layer and its torch.nn twin, and an input
    shape they accept."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    input_shape: tuple[int, ...] = ()


def as_pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)  # type: ignore[return-value]


def int_or_pair(low: int, high: int) -> st.SearchStrategy:
    """3 or (3, 1): torch and scratchnet accept both."""
    return st.one_of(st.integers(low, high), st.tuples(st.integers(low, high),
                                                       st.integers(low, high)))


def _non_square(draw: st.DrawFn, low_h: int, low_w: int, span: int = 4) -> tuple[int, int]:
    h = draw(st.integers(low_h, low_h + span), label="H")
    w = draw(st.integers(low_w, low_w + span).filter(lambda w: w != h), label="W")
    return h, w


def _channels(draw: st.DrawFn, groups: int) -> tuple[int, int]:
    """(C_in, C_out), both multiples of `groups` and both > 1."""
    low = 1 if groups > 1 else 2
    return groups * draw(st.integers(low, 3)), groups * draw(st.integers(low, 3))


@st.composite
def conv2d_configs(draw: st.DrawFn) -> LayerConfig:
    """Conv2d(C_in, C_out, kernel, stride, padding, dilation, groups, bias)."""
    groups = draw(st.integers(1, 3), label="groups")
    c_in, c_out = _channels(draw, groups)
    kernel, stride = draw(int_or_pair(1, 3)), draw(int_or_pair(1, 3))
    padding, dilation = draw(int_or_pair(0, 2)), draw(int_or_pair(1, 2))
    low = [max(1, d * (k - 1) + 1 - 2 * p)
           for k, p, d in zip(as_pair(kernel), as_pair(padding), as_pair(dilation))]
    h, w = _non_square(draw, *low)
    kwargs = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
              "bias": draw(st.booleans(), label="bias")}
    return LayerConfig((c_in, c_out, kernel), kwargs, (draw(st.integers(2, 3)), c_in, h, w))


@st.composite
def conv_transpose2d_configs(draw: st.DrawFn) -> LayerConfig:
    """ConvTranspose2d(C_in, C_out, kernel, stride, padding, output_padding, groups, bias,
    dilation), output_padding < max(stride, dilation) as torch requires."""
    groups = draw(st.integers(1, 3), label="groups")
    c_in, c_out = _channels(draw, groups)
    kernel, stride = draw(int_or_pair(1, 3)), draw(int_or_pair(1, 3))
    padding, dilation = draw(int_or_pair(0, 2)), draw(int_or_pair(1, 2))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1))
                           for s, d in zip(as_pair(stride), as_pair(dilation)))
    low = [max(1, 1 - (d * (k - 1) + op - 2 * p) // s)
           for k, s, p, d, op in zip(as_pair(kernel), as_pair(stride), as_pair(padding),
                                     as_pair(dilation), output_padding)]
    h, w = _non_square(draw, *low)
    kwargs = {"stride": stride, "padding": padding, "output_padding": output_padding,
              "groups": groups, "bias": draw(st.booleans(), label="bias"), "dilation": dilation}
    return LayerConfig((c_in, c_out, kernel), kwargs, (draw(st.integers(2, 3)), c_in, h, w))


@st.composite
def upsampling_configs(draw: st.DrawFn) -> LayerConfig:
    """Upsampling(C_in, C_out, kernel, scale_factor, stride, padding, dilation, bias); the scale
    is an int or a pair, and stride/dilation are often 1 (the fast phase decomposition)."""
    c_in, c_out = _channels(draw, 1)
    kernel, scale = draw(int_or_pair(1, 3)), draw(int_or_pair(1, 3), label="scale_factor")
    stride = draw(st.one_of(st.just(1), int_or_pair(1, 2)))
    dilation = draw(st.one_of(st.just(1), int_or_pair(1, 2)))
    padding = draw(int_or_pair(0, 2))
    low = [max(1, -(-(d * (k - 1) + 1 - 2 * p) // s))
           for k, s, p, d in zip(as_pair(kernel), as_pair(scale), as_pair(padding),
                                 as_pair(dilation))]
    h, w = _non_square(draw, *low, span=3)
    kwargs = {"scale_factor": scale, "stride": stride, "padding": padding, "dilation": dilation,
              "bias": draw(st.booleans(), label="bias")}
    return LayerConfig((c_in, c_out, kernel), kwargs, (draw(st.integers(2, 3)), c_in, h, w))


@st.composite
def nearest_upsampling_configs(draw: st.DrawFn) -> LayerConfig:
    c = draw(st.integers(2, 3))
    h, w = _non_square(draw, 1, 1)
    return LayerConfig((draw(int_or_pair(1, 3), label="scale_factor"),), {},
                       (draw(st.integers(2, 3)), c, h, w))


@st.composite
def maxpool2d_configs(draw: st.DrawFn) -> LayerConfig:
    """MaxPool2d(kernel, stride, padding) with padding ≤ kernel / 2, as torch requires."""
    kernel = as_pair(draw(int_or_pair(1, 3)))
    stride = draw(st.one_of(st.none(), int_or_pair(1, 3)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    h, w = _non_square(draw, *(max(1, k - 2 * p) for k, p in zip(kernel, padding)))
    return LayerConfig((kernel, stride, padding), {},
                       (draw(st.integers(2, 3)), draw(st.integers(2, 3)), h, w))


@st.composite
def linear_configs(draw: st.DrawFn) -> LayerConfig:
    """Linear(in, out, bias) on an input (*lead, in) with 0 to 3 leading dimensions."""
    in_f, out_f = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    lead = draw(st.lists(st.integers(1, 3), max_size=3), label="leading dims")
    return LayerConfig((in_f, out_f), {"bias": draw(st.booleans())}, (*lead, in_f))


@st.composite
def flatten_configs(draw: st.DrawFn) -> LayerConfig:
    """Flatten(start_dim, end_dim), either given from the front or the back, start ≤ end."""
    rank = draw(st.integers(2, 5))
    start = draw(st.integers(0, rank - 1))
    end = draw(st.integers(start, rank - 1))
    start = draw(st.sampled_from([start, start - rank]))
    end = draw(st.sampled_from([end, end - rank]))
    shape = tuple(draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank)))
    return LayerConfig((start, end), {}, shape)


@st.composite
def shapes(draw: st.DrawFn, min_rank: int = 1, max_rank: int = 4) -> tuple[int, ...]:
    return tuple(draw(st.lists(st.integers(1, 4), min_size=min_rank, max_size=max_rank)))


negative_slopes = st.floats(-0.5, 2.0, allow_nan=False, allow_infinity=False)


def make_tensor(shape: tuple[int, ...], seed: int, layout: str = "contiguous",
                dtype: torch.dtype = torch.float64, distinct: bool = False) -> Tensor:
    """N(0, 1) values (or, with `distinct`, a scaled permutation: no ties) in the given layout."""
    generator = torch.Generator().manual_seed(seed)
    numel = 1
    for size in shape:
        numel *= size
    if distinct:
        values = (torch.randperm(numel, generator=generator).to(dtype) - numel / 2) / numel
    else:
        values = torch.randn(numel, generator=generator, dtype=dtype)
    x = values.reshape(shape)
    if layout == "channels_last" and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    if layout == "strided" and x.dim() >= 1:
        wide = torch.zeros(*shape[:-1], 2 * shape[-1], dtype=dtype)
        wide[..., ::2] = x
        return wide[..., ::2]
    if layout == "transposed" and x.dim() >= 2:
        return x.transpose(-1, -2).contiguous().transpose(-1, -2)
    return x


def tensors(shape: tuple[int, ...], dtype: torch.dtype = torch.float64,
            distinct: bool = False) -> st.SearchStrategy:
    """A tensor of `shape` from a drawn seed in a drawn memory layout."""
    return st.builds(make_tensor, st.just(tuple(shape)), seeds, st.sampled_from(LAYOUTS),
                     st.just(dtype), st.just(distinct))


learning_rates = st.sampled_from([1e-3, 1e-2, 0.1])


@st.composite
def sgd_kwargs(draw: st.DrawFn) -> dict[str, Any]:
    """torch.optim.SGD hyper-parameters: plain, momentum, dampening, Nesterov, weight decay."""
    momentum = draw(st.sampled_from([0.0, 0.5, 0.9]))
    nesterov = momentum > 0 and draw(st.booleans())
    dampening = 0.0 if nesterov else draw(st.sampled_from([0.0, 0.3]))
    return {"lr": draw(learning_rates), "momentum": momentum, "dampening": dampening,
            "weight_decay": draw(st.sampled_from([0.0, 1e-2])), "nesterov": nesterov}


@st.composite
def adam_kwargs(draw: st.DrawFn) -> dict[str, Any]:
    """torch.optim.Adam hyper-parameters, with and without (L2 or decoupled) weight decay and
    AMSGrad."""
    return {"lr": draw(learning_rates),
            "betas": draw(st.sampled_from([(0.9, 0.999), (0.5, 0.9)])),
            "eps": draw(st.sampled_from([1e-8, 1e-3])),
            "weight_decay": draw(st.sampled_from([0.0, 1e-2])),
            "amsgrad": draw(st.booleans()), "decoupled_weight_decay": draw(st.booleans())}


def noisy_pairs(n: int, seed: int, size: int = 16) -> tuple[Tensor, Tensor]:
    """Two noisy uint8 copies (N, 3, size, size) of the same random clean images (values 40 to
    215, Gaussian noise of level 25): Noise2Noise training or validation pairs."""
    g = torch.Generator().manual_seed(seed)
    clean = torch.randint(40, 216, (n, 3, size, size), generator=g).float()
    return tuple((clean + 25 * torch.randn(clean.shape, generator=g)).round().clamp(0, 255)
                 .to(torch.uint8) for _ in range(2))
