"""Notebook 09 · Passing BM3D: T09.1 the clipped mean m(s) (`_positive_part_mean` and
`clipped_mean`). The student's side: probes/t09_unclip.py. References: the expectations as
integrals, E[g(Y)] = ∫ g(μ + σt) φ(t) dt, by Simpson's rule on t ∈ [−12, 12] in float64 (to about
1e-9: the clip's kinks cost Simpson its order), and a simulation."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor

from scratchnet.coursework.checks import expect_close, expect_true

pytestmark = pytest.mark.T09
TOL = {"rtol": 1e-7, "atol": 1e-9}
T = torch.linspace(-12, 12, 24_001, dtype=torch.float64)
WEIGHTS = torch.ones_like(T)
WEIGHTS[1:-1:2], WEIGHTS[2:-1:2] = 4, 2
WEIGHTS *= (T[1] - T[0]) / 3 * torch.exp(-T * T / 2) / math.sqrt(2 * math.pi)

RAMP_HINT = ("P(μ) = ∫₀^∞ y·φ((y − μ)/σ)/σ dy = μ·Φ(μ/σ) + σ·φ(μ/σ), with Φ = torch.special.ndtr "
             "and φ(t) = exp(−t²/2)/√(2π), elementwise over μ (notebook 09, §2)")
CLIP_HINT = ("clip(t, 0, 1) = max(t, 0) − max(t − 1, 0), so m(x) = P(x) − P(x − 1), "
             "P = _positive_part_mean (notebook 09, §2)")


def expectation(g, mu: Tensor, sigma: float) -> Tensor:
    """E[g(Y)] for Y ~ N(mu, sigma²), elementwise over mu (…)."""
    return (g(mu[..., None] + sigma * T) * WEIGHTS).sum(-1)


def values(seed: int, n: int = 7) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    inside = torch.rand(n, generator=generator, dtype=torch.float64)
    return torch.cat([torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64), inside])


@pytest.mark.T09_1
@pytest.mark.parametrize("sigma", [25 / 255, 0.01, 0.3])
def test_positive_part_mean(student, sigma):
    mu = torch.tensor([-1.0, -0.2, -0.05, 0.0, 0.03, 0.4, 1.0], dtype=torch.float64)
    want = expectation(lambda y: y.clamp(min=0), mu, sigma)
    got = student.positive_part_mean(mu, sigma)
    expect_true(isinstance(got, Tensor) and got.shape == mu.shape,
                f"_positive_part_mean(mu, σ) for mu of shape {tuple(mu.shape)} should return a "
                f"tensor of that shape, elementwise; got "
                f"{getattr(got, 'shape', type(got).__name__)}.\nHint: {RAMP_HINT}")
    expect_close(got, want,
                 f"_positive_part_mean(mu, σ={sigma:.4g}) = E[max(Y, 0)], Y ~ N(mu, σ²)", **TOL,
                 hint=RAMP_HINT)


@pytest.mark.T09_1
@pytest.mark.parametrize("shape", [(7,), (2, 3, 4)], ids=["1-d", "3-d"])
def test_clipped_mean_fixed_cases(student, shape):
    sigma = 25 / 255
    x = torch.rand(shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x.view(-1)[:2] = torch.tensor([0.0, 1.0], dtype=torch.float64)
    want = expectation(lambda y: y.clamp(0, 1), x.flatten(), sigma).view(shape)
    got = student.clipped_mean(x, sigma)
    expect_true(isinstance(got, Tensor) and got.shape == x.shape and got.dtype == torch.float64,
                f"clipped_mean(x, σ) for x of shape {shape} should return float64 of that shape; "
                f"got {getattr(got, 'dtype', type(got).__name__)} "
                f"{tuple(getattr(got, 'shape', ()))}.\nHint: " + CLIP_HINT)
    expect_close(got, want, f"clipped_mean(x, σ=25/255) for x of shape {shape}", **TOL,
                 hint=CLIP_HINT)


@pytest.mark.T09_1
def test_clipped_mean_float32_input(student):
    x = torch.tensor([0.0, 0.1, 0.9, 1.0])
    want = expectation(lambda y: y.clamp(0, 1), x.double(), 25 / 255)
    expect_close(student.clipped_mean(x, 25 / 255), want,
                 "clipped_mean of float32 values (computed in float64)", **TOL, hint=CLIP_HINT)


@pytest.mark.T09_1
def test_clipped_mean_against_a_simulation(student):
    sigma = 25 / 255
    x = torch.tensor([0.0, 0.05, 0.5, 0.97], dtype=torch.float64)
    draws = x + sigma * torch.randn(400_000, len(x), generator=torch.Generator().manual_seed(0),
                                    dtype=torch.float64)
    expect_close(student.clipped_mean(x, sigma), draws.clamp(0, 1).mean(0),
                 "clipped_mean against the mean of 400,000 clipped noisy draws", rtol=0,
                 atol=5e-4, hint=CLIP_HINT)


@pytest.mark.T09_1
@given(seed=st.integers(0, 2**31), sigma=st.floats(0.005, 0.5))
def test_clipped_mean(student, seed, sigma):
    x = values(seed)
    want = expectation(lambda y: y.clamp(0, 1), x, sigma)
    expect_close(student.clipped_mean(x, sigma), want, f"clipped_mean(x, σ={sigma:.4g})", **TOL,
                 hint=CLIP_HINT)


@pytest.mark.T09_1
def test_unclip_inverts_your_clipped_mean(student):
    sigma = 25 / 255
    x = values(3, 20)
    expect_close(student.unclip_clipped_mean(x.clone(), sigma), x,
                 "unclip(clipped_mean(x, σ), σ), which should give x back", rtol=0, atol=1e-6,
                 hint="unclip tabulates your clipped_mean and inverts it; m must increase with x "
                      "— " + CLIP_HINT)
