"""Notebook 10 · Going further: T10.1 Residual.backward, T10.2 Concat.backward.

The student's side: probes/t10_skip_connections.py, whose branches are modules written there
(with their own backward) or Identity, so that only the containers are tested. References: the
same computation in torch with autograd, float64, the branches' by the functions below."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor

from scratchnet.coursework.checks import expect_close, expect_true
from scratchnet.coursework.references import randn, torch_grads

pytestmark = pytest.mark.T10
TOL = {"rtol": 1e-10, "atol": 1e-12}


def channel_scale(x: Tensor, a: Tensor) -> Tensor:
    """The probe's ChannelScale: y[n, c, h, w] = a[c]·x[n, c, h, w]²."""
    return a.view(1, -1, 1, 1) * x * x


def channel_mix(x: Tensor, m: Tensor) -> Tensor:
    """The probe's ChannelMix: y[n, o, h, w] = Σ_c m[o, c]·x[n, c, h, w]."""
    return torch.einsum("oc,nchw->nohw", m, x)


def parameters(spec: dict) -> list[Tensor]:
    """The described module's parameters (probes/t10_skip_connections.build), in the order of
    its named_parameters()."""
    if "param" in spec:
        return [spec["param"]]
    return [p for module in spec.get("modules", []) for p in parameters(module)]


def torch_function(spec: dict):
    """A described branch ("scale", "mix", "identity" or a "chain" of two) as a torch function
    of (x, *its parameters)."""
    kind = spec["kind"]
    if kind == "identity":
        return lambda x: x
    if kind == "chain":
        first, second = (torch_function(m) for m in spec["modules"])
        k = len(parameters(spec["modules"][0]))
        return lambda x, *ps: second(first(x, *ps[:k]), *ps[k:])
    return {"scale": channel_scale, "mix": channel_mix}[kind]


def check(student, spec: dict, f, x: Tensor, seed: int, name: str, hint: str) -> None:
    params = parameters(spec)
    y_want = f(x, *params)
    g = randn(tuple(y_want.shape), seed + 7)
    _, (dx, *dps) = torch_grads(f, [x, *params], g)
    got = student.forward_backward(spec, x, g)
    expect_close(got["y"], y_want, f"the output of {name}", **TOL,
                 hint="the forward pass is given: did you change it?")
    expect_close(got["dx"], dx, f"∂L/∂x of {name}", **TOL, hint=hint)
    expect_true(len(got["grads"]) == len(dps),
                f"{name} has {len(got['grads'])} parameters, expected {len(dps)}: "
                f"named_parameters() should list every branch's")
    for (param, grad), want in zip(got["grads"], dps):
        expect_close(grad, want, f"∂L/∂{param} of {name}", **TOL, hint=hint)


# -- T10.1 Residual ----------------------------------------------------------------------------
RESIDUAL_HINT = ("y = x + f(x), so ∂L/∂x = g + f.backward(g): the skip path passes g through "
                 "unchanged, and the branch's backward (called once) accumulates its own "
                 "parameters' gradients")


@st.composite
def residual_cases(draw: st.DrawFn) -> tuple[str, tuple[int, int, int, int], int]:
    branch = draw(st.sampled_from(["scale", "mix", "scale→mix", "identity"]), label="branch")
    h = draw(st.integers(1, 4), label="H")
    w = draw(st.integers(1, 4).filter(lambda w: w != h), label="W")
    shape = (draw(st.integers(2, 3), label="N"), draw(st.integers(2, 4), label="C"), h, w)
    return branch, shape, draw(st.integers(0, 2**31))


def branch_module(kind: str, c: int, seed: int) -> dict:
    """The description of a shape-keeping branch over C channels."""
    if kind == "scale":
        return {"kind": "scale", "param": randn((c,), seed + 1)}
    if kind == "mix":
        return {"kind": "mix", "param": randn((c, c), seed + 2)}
    if kind == "identity":
        return {"kind": "identity"}
    return {"kind": "chain", "modules": [branch_module("scale", c, seed),
                                         branch_module("mix", c, seed)]}


@pytest.mark.T10_1
@given(case=residual_cases())
def test_residual(student, case):
    kind, shape, seed = case
    branch = branch_module(kind, shape[1], seed)
    f = torch_function(branch)
    check(student, {"kind": "residual", "modules": [branch]},
          lambda x, *ps: x + f(x, *ps), randn(shape, seed), seed, f"Residual({kind})",
          RESIDUAL_HINT)


@pytest.mark.T10_1
def test_nested_residual(student):
    """Residual(Residual(f)): y = 2x + f(x)."""
    branch = {"kind": "scale", "param": randn((3,), 1)}
    inner = {"kind": "residual", "modules": [branch]}
    check(student, {"kind": "residual", "modules": [inner]},
          lambda x, a: 2 * x + channel_scale(x, a), randn((2, 3, 4, 5), 2), 3,
          "Residual(Residual(scale))", RESIDUAL_HINT)


# -- T10.2 Concat ------------------------------------------------------------------------------
CONCAT_HINT = ("split grad_output along self.dim into the branches' slices (the sizes forward "
               "saved, in branch order), call each branch's backward on its own slice, and add "
               "up what they return: x fed every branch, so its gradients sum")


@st.composite
def concat_cases(draw: st.DrawFn) -> tuple[tuple[str, ...], int, tuple[int, int, int, int], int]:
    """1 to 3 branches; along channels (dim 1) a branch may change the number of channels."""
    dim = draw(st.sampled_from([1, 1, 2]), label="dim")
    kinds = ["scale", "identity"] + (["mix"] if dim == 1 else [])
    branches = tuple(draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=3),
                          label="branches"))
    h = draw(st.integers(1, 4), label="H")
    w = draw(st.integers(1, 4).filter(lambda w: w != h), label="W")
    shape = (draw(st.integers(2, 3), label="N"), draw(st.integers(2, 3), label="C"), h, w)
    return branches, dim, shape, draw(st.integers(0, 2**31))


@pytest.mark.T10_2
@given(case=concat_cases())
def test_concat(student, case):
    kinds, dim, shape, seed = case
    c = shape[1]
    branches = []
    for i, kind in enumerate(kinds):
        if kind == "mix":       # C → 1 … 4 channels
            branches.append({"kind": "mix", "param": randn((1 + (seed + i) % 4, c), seed + i)})
        else:
            branches.append(branch_module(kind, c, seed + i))
    functions = [torch_function(b) for b in branches]
    counts = [len(parameters(b)) for b in branches]

    def f(x: Tensor, *ps: Tensor) -> Tensor:
        outputs, rest = [], list(ps)
        for fn, k in zip(functions, counts):
            outputs.append(fn(x, *rest[:k]))
            rest = rest[k:]
        return torch.cat(outputs, dim)

    check(student, {"kind": "concat", "modules": branches, "dim": dim}, f, randn(shape, seed),
          seed, f"Concat({', '.join(kinds)}, dim={dim})", CONCAT_HINT)
