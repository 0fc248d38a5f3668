"""Notebook 10 · Going further: T10.1 Residual.backward, T10.2 Concat.backward.

The branches are modules written here (with their own backward) or Identity, so that only the
containers are tested. References: the same computation in torch with autograd, float64."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor

import scratchnet as sn
from scratchnet.coursework.checks import expect_close
from scratchnet.coursework.references import randn

pytestmark = pytest.mark.T10
TOL = {"rtol": 1e-10, "atol": 1e-12}



class ChannelScale(sn.Module):
    """y[n, c, h, w] = a[c]·x[n, c, h, w]²; a: (C,) is a parameter. Keeps the shape."""

    def __init__(self, a: Tensor) -> None:
        super().__init__()
        self.register_parameter("a", a)

    def forward(self, x: Tensor) -> Tensor:
        self.save_for_backward(x=x)
        return self.a.view(1, -1, 1, 1) * x * x

    def backward(self, g: Tensor) -> Tensor:
        x = self.saved["x"]
        self.accumulate_grad("a", (g * x * x).sum((0, 2, 3)))
        return 2 * self.a.view(1, -1, 1, 1) * x * g

    @staticmethod
    def reference(x: Tensor, a: Tensor) -> Tensor:
        return a.view(1, -1, 1, 1) * x * x


class ChannelMix(sn.Module):
    """y[n, o, h, w] = Σ_c m[o, c]·x[n, c, h, w]; m: (C_out, C_in) is a parameter."""

    def __init__(self, m: Tensor) -> None:
        super().__init__()
        self.register_parameter("m", m)

    def forward(self, x: Tensor) -> Tensor:
        self.save_for_backward(x=x)
        return torch.einsum("oc,nchw->nohw", self.m, x)

    def backward(self, g: Tensor) -> Tensor:
        self.accumulate_grad("m", torch.einsum("nohw,nchw->oc", g, self.saved["x"]))
        return torch.einsum("oc,nohw->nchw", self.m, g)

    @staticmethod
    def reference(x: Tensor, m: Tensor) -> Tensor:
        return torch.einsum("oc,nchw->nohw", m, x)


class Chain(sn.Module):
    """Two modules in a row, with its own backward (not Sequential, another task's code)."""

    def __init__(self, first: sn.Module, second: sn.Module) -> None:
        super().__init__()
        self.first, self.second = first, second

    def forward(self, x: Tensor) -> Tensor:
        return self.second(self.first(x))

    def backward(self, g: Tensor) -> Tensor:
        return self.first.backward(self.second.backward(g))


def torch_function(module: sn.Module):
    """The module's computation as a torch function of (x, *its parameters)."""
    if isinstance(module, sn.Identity):
        return lambda x: x
    if isinstance(module, Chain):
        first, second = torch_function(module.first), torch_function(module.second)
        k = len(list(module.first.parameters()))
        return lambda x, *ps: second(first(x, *ps[:k]), *ps[k:])
    return type(module).reference


def reference(f, module: sn.Module, x: Tensor, g: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
    """f(x, *module's parameters), ∂L/∂x and the parameters' gradients, by torch autograd."""
    with torch.enable_grad():
        leaves = [t.detach().clone().requires_grad_(True) for t in (x, *module.parameters())]
        y = f(*leaves)
        y.backward(g)
    return y.detach(), leaves[0].grad, [leaf.grad for leaf in leaves[1:]]


def check(module: sn.Module, f, x: Tensor, seed: int, name: str, hint: str) -> None:
    y_want = f(x, *module.parameters())
    g = randn(tuple(y_want.shape), seed + 7)
    _, dx, dps = reference(f, module, x, g)
    y = module(x)
    expect_close(y, y_want, f"the output of {name}", **TOL,
                 hint="the forward pass is given: did you change it?")
    expect_close(module.backward(g), dx, f"∂L/∂x of {name}", **TOL, hint=hint)
    for (param, p), want in zip(module.named_parameters(), dps):
        expect_close(p.grad, want, f"∂L/∂{param} of {name}", **TOL, hint=hint)


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


def branch_module(kind: str, c: int, seed: int) -> sn.Module:
    """A shape-keeping branch over C channels."""
    if kind == "scale":
        return ChannelScale(randn((c,), seed + 1))
    if kind == "mix":
        return ChannelMix(randn((c, c), seed + 2))
    if kind == "identity":
        return sn.Identity()
    return Chain(ChannelScale(randn((c,), seed + 1)), ChannelMix(randn((c, c), seed + 2)))


@pytest.mark.T10_1
@given(case=residual_cases())
def test_residual(case):
    kind, shape, seed = case
    branch = branch_module(kind, shape[1], seed)
    f = torch_function(branch)
    check(sn.Residual(branch), lambda x, *ps: x + f(x, *ps), randn(shape, seed), seed,
          f"Residual({kind})", RESIDUAL_HINT)


@pytest.mark.T10_1
def test_nested_residual():
    """Residual(Residual(f)): y = 2x + f(x)."""
    branch = ChannelScale(randn((3,), 1))
    check(sn.Residual(sn.Residual(branch)),
          lambda x, a: 2 * x + ChannelScale.reference(x, a), randn((2, 3, 4, 5), 2), 3,
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
def test_concat(case):
    kinds, dim, shape, seed = case
    c = shape[1]
    branches = []
    for i, kind in enumerate(kinds):
        if kind == "mix":       # C → 1 … 4 channels
            branches.append(ChannelMix(randn((1 + (seed + i) % 4, c), seed + i)))
        else:
            branches.append(branch_module(kind, c, seed + i))
    functions = [torch_function(b) for b in branches]
    counts = [len(list(b.parameters())) for b in branches]

    def f(x: Tensor, *ps: Tensor) -> Tensor:
        outputs, rest = [], list(ps)
        for fn, k in zip(functions, counts):
            outputs.append(fn(x, *rest[:k]))
            rest = rest[k:]
        return torch.cat(outputs, dim)

    check(sn.Concat(*branches, dim=dim), f, randn(shape, seed), seed,
          f"Concat({', '.join(kinds)}, dim={dim})", CONCAT_HINT)
