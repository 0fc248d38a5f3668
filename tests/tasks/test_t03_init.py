"""Notebook 03 · Initialisation: T03.1 xavier_uniform_, T03.2 kaiming_normal_.
The student's side: probes/t03_init.py. References: torch.nn.init with the same generator
state, in float64: the same random numbers, scaled by the same bound or standard deviation, and
the generator left in the same state. torch.nn.init itself is refused to the student's package
by the guard (tests/tasks/conftest.py)."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor, nn

from scratchnet.coursework.checks import expect_close, expect_true

pytestmark = pytest.mark.T03
TOL = {"rtol": 1e-12, "atol": 0.0}

# weight shapes: Linear (out, in) and Conv2d (out, in, kh, kw), where the fans include the kernel
weight_shapes = st.one_of(
    st.tuples(st.integers(1, 40), st.integers(1, 40)),
    st.tuples(st.integers(1, 8), st.integers(1, 8), st.integers(1, 3), st.integers(1, 3)))


def unfilled(shape: tuple[int, ...]) -> Tensor:
    """An empty float64 weight: NaN everywhere, so that an element left unfilled shows."""
    return torch.full(shape, math.nan, dtype=torch.float64)


def expect_same_draws(student, name: str, shape: tuple[int, ...], seed: int, hint: str,
                      **kwargs) -> None:
    """The student's init.<name> and torch.nn.init's, each on an empty float64 weight of `shape`
    with a generator seeded with `seed`, fill it with the same numbers and leave the generator
    in the same state."""
    generator = torch.Generator().manual_seed(seed)
    want = getattr(nn.init, name)(unfilled(shape), generator=generator, **kwargs)
    got = student.fill(name, unfilled(shape), seed, kwargs)
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    call = f"{name}(w{', ' + args if args else ''}) of a weight of shape {shape}"
    expect_true(got["returned_tensor"], f"{call} should fill w in place and return w itself")
    expect_true(not torch.isnan(got["tensor"]).any(), f"{call} left some of w unfilled: fill "
                "every element in place, e.g. with uniform_(tensor, …) or normal_(tensor, …)")
    expect_true(torch.equal(got["state"], generator.get_state()),
                f"{call} drew a different amount of random numbers from the generator than "
                "torch.nn.init does (or ignored the generator): draw exactly once, with "
                f"{'uniform_' if 'uniform' in name else 'normal_'}(tensor, …, generator)")
    expect_close(got["tensor"], want, f"the tensor filled by {call}", **TOL, hint=hint)


# -- T03.1 xavier_uniform_ ---------------------------------------------------------------------
XAVIER_HINT = ("Var(W) = gain²·2/(fan_in + fan_out) balances the forward and the backward pass "
               "(§2); U(−a, a) has variance a²/3, so a = √3·std with std = "
               "gain·√(2/(fan_in + fan_out)) — fan_in = in·prod(kernel), fan_out = "
               "out·prod(kernel), from _calculate_fan_in_and_fan_out")


@pytest.mark.T03_1
@given(shape=weight_shapes, seed=st.integers(0, 2**31),
       gain=st.sampled_from([1.0, 5.0 / 3, math.sqrt(2.0), 0.5]))
def test_xavier_uniform(student, shape, seed, gain):
    expect_same_draws(student, "xavier_uniform_", shape, seed, XAVIER_HINT, gain=gain)


@pytest.mark.T03_1
def test_xavier_uniform_default_gain_and_global_generator(student):
    """Without a generator, the global one (torch.manual_seed) is used, as in torch."""
    got = student.fill_global("xavier_uniform_", torch.empty(30, 20, dtype=torch.float64), 7, {})
    torch.manual_seed(7)
    want = nn.init.xavier_uniform_(torch.empty(30, 20, dtype=torch.float64))
    expect_close(got, want, "xavier_uniform_(w) with the default gain and the global generator",
                 **TOL, hint=XAVIER_HINT + "; the default gain is 1 and generator=None means "
                 "torch's global generator")


@pytest.mark.T03_1
def test_xavier_uniform_needs_two_dimensions(student):
    expect_true(student.value_error("xavier_uniform_", torch.empty(5), {}) is not None,
                "xavier_uniform_ of a weight of shape (5,) should raise ValueError, as torch "
                "does: _calculate_fan_in_and_fan_out raises it for fewer than 2 dimensions")


# -- T03.2 kaiming_normal_ --------------------------------------------------------------------
KAIMING_HINT = ("std = gain/√fan (§2), where gain = calculate_gain(nonlinearity, a) — √2 for "
                "ReLU and for the default 'leaky_relu' with a = 0 — and fan = "
                "_calculate_correct_fan(tensor, mode): fan_in for mode='fan_in', fan_out for "
                "'fan_out'; draw N(0, std²) with normal_ (std, not the variance std²)")


@pytest.mark.T03_2
@given(shape=weight_shapes, seed=st.integers(0, 2**31),
       kwargs=st.sampled_from([{}, {"nonlinearity": "relu"},
                               {"mode": "fan_out", "nonlinearity": "relu"},
                               {"a": 0.2}, {"a": math.sqrt(5), "mode": "fan_out"},
                               {"nonlinearity": "tanh"}, {"nonlinearity": "linear"}]))
def test_kaiming_normal(student, shape, seed, kwargs):
    expect_same_draws(student, "kaiming_normal_", shape, seed, KAIMING_HINT, **kwargs)


@pytest.mark.T03_2
def test_kaiming_normal_global_generator(student):
    got = student.fill_global("kaiming_normal_", torch.empty(40, 30, dtype=torch.float64), 11,
                              {"nonlinearity": "relu"})
    torch.manual_seed(11)
    want = nn.init.kaiming_normal_(torch.empty(40, 30, dtype=torch.float64), nonlinearity="relu")
    expect_close(got, want, "kaiming_normal_(w, nonlinearity='relu') with the global generator",
                 **TOL, hint=KAIMING_HINT + "; generator=None means torch's global generator")


@pytest.mark.T03_2
def test_kaiming_normal_leaves_empty_tensors_alone(student):
    """A weight with a zero-size dimension (e.g. Linear(0, 3)): torch warns and returns it."""
    got = student.fill_empty("kaiming_normal_", torch.empty(3, 0))
    expect_true(got["raised"] is None,
                "kaiming_normal_ of a (3, 0) weight divided by fan_in = 0: return a tensor with a "
                "zero-size dimension untouched first, as torch does "
                "(`if _empty(tensor): return tensor`)")
    expect_true(got["returned_tensor"], "kaiming_normal_ of an empty weight should return it")
    expect_true(any("zero-element" in message for message in got["warnings"]),
                "kaiming_normal_ of a (3, 0) weight should warn, as torch does: "
                "`if _empty(tensor): return tensor` (_empty warns)")


@pytest.mark.T03_2
def test_kaiming_normal_refuses_what_torch_refuses(student):
    for bad, kwargs, why in (((5,), {}, "fans need at least 2 dimensions"),
                             ((3, 4), {"mode": "fan_avg"}, "mode is 'fan_in' or 'fan_out'")):
        args = "".join(f", {k}={v!r}" for k, v in kwargs.items())
        expect_true(student.value_error("kaiming_normal_", torch.empty(bad), kwargs) is not None,
                    f"kaiming_normal_(w{args}) of a weight of shape {bad} should raise "
                    f"ValueError, as torch does ({why}; _calculate_correct_fan raises it)")
