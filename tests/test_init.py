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


# ---- scratchnet.init against torch.nn.init ---------------------------------------------------
# Every function, float64, the same generator state → the same numbers bit for bit, and the
# generator left in the same state (the same number of draws).

SHAPES = [(3, 4), (7, 1), (1, 9), (5, 2, 3, 3), (4, 6, 2), (2, 3, 1, 2, 2)]
INITS = {
    "uniform_": [{}, {"a": -2.0, "b": 3.0}],
    "normal_": [{}, {"mean": 1.5, "std": 0.3}],
    "xavier_uniform_": [{}, {"gain": 5.0 / 3}],
    "xavier_normal_": [{}, {"gain": 1.7}],
    "kaiming_uniform_": [{}, {"a": 5 ** 0.5}, {"mode": "fan_out", "nonlinearity": "relu"},
                         {"a": 0.2, "mode": "FAN_IN"}, {"nonlinearity": "tanh"}],
    "kaiming_normal_": [{}, {"a": 5 ** 0.5}, {"mode": "fan_out", "nonlinearity": "relu"},
                        {"a": 0.2}, {"nonlinearity": "linear", "mode": "fan_out"}],
    "orthogonal_": [{}, {"gain": 2.0}],
}


def _draw(fn, shape, kwargs, seed, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    tensor = torch.empty(shape, dtype=dtype)
    returned = fn(tensor, generator=generator, **kwargs)
    assert returned is tensor
    return tensor, generator.get_state()


@pytest.mark.parametrize("name", INITS)
def test_init_functions_draw_what_torch_draws(name):
    ours, theirs = getattr(sn.init, name), getattr(nn.init, name)
    for kwargs in INITS[name]:
        for seed, shape in enumerate(SHAPES):
            got, got_state = _draw(ours, shape, kwargs, seed)
            want, want_state = _draw(theirs, shape, kwargs, seed)
            assert torch.equal(got, want), (name, kwargs, shape)
            assert torch.equal(got_state, want_state), (name, kwargs, shape)


@given(seed=seeds, fan_in=st.integers(1, 300), fan_out=st.integers(1, 300))
def test_xavier_and_kaiming_bounds_are_torch_floats(seed, fan_in, fan_out):
    """The bounds are ulp-sensitive float computations; float64 draws expose any reordering."""
    for name in ("xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_"):
        got, _ = _draw(getattr(sn.init, name), (fan_out, fan_in), {}, seed)
        want, _ = _draw(getattr(nn.init, name), (fan_out, fan_in), {}, seed)
        assert torch.equal(got, want), name


def test_the_global_generator_when_none_is_given():
    for name in INITS:
        torch.manual_seed(3)
        got = getattr(sn.init, name)(torch.empty(6, 5, dtype=torch.float64))
        after_ours = torch.rand(2)
        torch.manual_seed(3)
        want = getattr(nn.init, name)(torch.empty(6, 5, dtype=torch.float64))
        assert torch.equal(got, want) and torch.equal(after_ours, torch.rand(2)), name


def test_constants():
    for name, args in (("constant_", (0.25,)), ("zeros_", ()), ("ones_", ())):
        got = getattr(sn.init, name)(torch.randn(3, 4), *args)
        assert torch.equal(got, getattr(nn.init, name)(torch.randn(3, 4), *args)), name


@pytest.mark.parametrize("nonlinearity, param", [
    ("linear", None), ("conv2d", None), ("conv_transpose3d", None), ("sigmoid", None),
    ("tanh", None), ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", 3),
    ("leaky_relu", 5 ** 0.5), ("selu", None)])
def test_calculate_gain(nonlinearity, param):
    assert sn.init.calculate_gain(nonlinearity, param) == nn.init.calculate_gain(nonlinearity, param)


def test_errors_are_torchs():
    from torch.nn.init import _calculate_fan_in_and_fan_out

    from scratchnet.init import _calculate_fan_in_and_fan_out as ours
    for shape in ((3, 4), (2, 3, 5), (4, 2, 3, 3), (1, 1, 1, 1, 7)):
        assert ours(torch.empty(shape)) == _calculate_fan_in_and_fan_out(torch.empty(shape))
    cases = [("xavier_uniform_", (5,), {}), ("xavier_normal_", (), {}),
             ("kaiming_uniform_", (4,), {}), ("kaiming_normal_", (4,), {}),
             ("kaiming_normal_", (3, 4), {"mode": "fan_avg"}),
             ("kaiming_uniform_", (3, 4), {"nonlinearity": "gelu"}),
             ("kaiming_normal_", (3, 4), {"nonlinearity": "leaky_relu", "a": True}),
             ("orthogonal_", (6,), {})]
    for name, shape, kwargs in cases:
        with pytest.raises(ValueError) as want:
            getattr(nn.init, name)(torch.empty(shape), **kwargs)
        with pytest.raises(ValueError) as got:
            getattr(sn.init, name)(torch.empty(shape), **kwargs)
        assert str(got.value) == str(want.value), (name, shape, kwargs)
    with pytest.raises(ValueError, match="Unsupported nonlinearity gelu"):
        sn.init.calculate_gain("gelu")


def test_zero_element_tensors_are_left_alone_with_torchs_warning():
    for name in ("kaiming_uniform_", "kaiming_normal_"):
        with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
            out = getattr(sn.init, name)(torch.empty(0, 3))
        assert out.shape == (0, 3)
    assert sn.init.orthogonal_(torch.empty(0, 3)).shape == (0, 3)
    assert sn.init.xavier_uniform_(torch.empty(0, 3)).shape == (0, 3)


def test_works_on_torch_parameters_too():
    """As torch.nn.init: in place on a leaf that requires gradients (under no_grad)."""
    weight = nn.Parameter(torch.empty(4, 3))
    with torch.enable_grad():
        for name in INITS:
            assert getattr(sn.init, name)(weight) is weight


def test_variances_are_what_the_notebook_derives():
    """Var(W): Xavier 2/(fan_in + fan_out), He 2/fan_in, torch's default 1/(3·fan_in)."""
    w = torch.empty(400, 300, dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    for fill, variance in ((lambda: sn.init.xavier_uniform_(w, generator=generator), 2 / 700),
                           (lambda: sn.init.xavier_normal_(w, generator=generator), 2 / 700),
                           (lambda: sn.init.kaiming_normal_(w, nonlinearity="relu",
                                                            generator=generator), 2 / 300),
                           (lambda: sn.init.kaiming_uniform_(w, a=5 ** 0.5,
                                                             generator=generator), 1 / 900)):
        assert fill().var().item() == pytest.approx(variance, rel=0.02)


def test_init_is_part_of_the_pure_core():
    from test_pure_core import core_files, violations
    path = next(p for p in core_files() if p.name == "init.py")
    assert violations(path.read_text(encoding="utf-8")) == []
