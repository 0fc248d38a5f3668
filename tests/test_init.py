"""Same RNG state → bit-identical initial weights and biases as torch.nn, and the same number of
random draws (the generator is left in the same state)."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from strategies import (
    conv2d_configs,
    conv_transpose2d_configs,
    linear_configs,
    seeds,
    upsampling_configs,
)
from torch import nn

import scratchnet as sn

dtypes = st.sampled_from([torch.float32, torch.float64])


def assert_same_init(ours, theirs, seed: int) -> None:
    """`ours()` and `theirs()` built after the same manual_seed draw the same numbers."""
    torch.manual_seed(seed)
    layer = ours()
    after_ours = torch.rand(3)
    torch.manual_seed(seed)
    twin = theirs()
    after_theirs = torch.rand(3)
    sd, torch_sd = layer.state_dict(), twin.state_dict()
    assert list(sd) == list(torch_sd)
    for (name, p), q in zip(sd.items(), torch_sd.values()):
        assert p.dtype == q.dtype and torch.equal(p, q), name
    assert torch.equal(after_ours, after_theirs)


@given(cfg=conv2d_configs(), dtype=dtypes, seed=seeds)
def test_conv2d(cfg, dtype, seed):
    assert_same_init(lambda: sn.Conv2d(*cfg.args, **cfg.kwargs, dtype=dtype),
                     lambda: nn.Conv2d(*cfg.args, **cfg.kwargs, dtype=dtype), seed)


@given(cfg=conv_transpose2d_configs(), dtype=dtypes, seed=seeds)
def test_conv_transpose2d(cfg, dtype, seed):
    assert_same_init(lambda: sn.ConvTranspose2d(*cfg.args, **cfg.kwargs, dtype=dtype),
                     lambda: nn.ConvTranspose2d(*cfg.args, **cfg.kwargs, dtype=dtype), seed)


@given(cfg=linear_configs(), dtype=dtypes, seed=seeds)
def test_linear(cfg, dtype, seed):
    assert_same_init(lambda: sn.Linear(*cfg.args, **cfg.kwargs, dtype=dtype),
                     lambda: nn.Linear(*cfg.args, **cfg.kwargs, dtype=dtype), seed)


@given(cfg=upsampling_configs(), dtype=dtypes, seed=seeds)
def test_upsampling_initialises_like_the_conv_it_contains(cfg, dtype, seed):
    conv_kwargs = {k: v for k, v in cfg.kwargs.items() if k != "scale_factor"}
    assert_same_init(lambda: sn.Upsampling(*cfg.args, **cfg.kwargs, dtype=dtype),
                     lambda: nn.Conv2d(*cfg.args, **conv_kwargs, dtype=dtype), seed)


def test_every_fan_in_up_to_300_in_float64():
    """The bound is an ulp-sensitive float computation; float64 draws expose any reordering."""
    for fan in range(1, 301):
        assert_same_init(lambda fan=fan: sn.Linear(fan, 2, dtype=torch.float64),
                         lambda fan=fan: nn.Linear(fan, 2, dtype=torch.float64), fan)


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors is a no-op")
def test_zero_inputs_leave_weights_empty_and_bias_zero():
    assert_same_init(lambda: sn.Linear(0, 3), lambda: nn.Linear(0, 3), 0)
