"""Notebook 01 · Modules and the chain rule: T01.1 Linear.forward, T01.2 Linear.backward,
T01.3 Sequential.forward/backward. References: torch (F.linear, autograd) in float64."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor

import scratchnet as sn
from scratchnet.coursework.checks import expect_close, expect_true
from scratchnet.coursework.references import randn, torch_grads

pytestmark = pytest.mark.T01
TOL = {"rtol": 1e-10, "atol": 1e-12}




@st.composite
def linear_cases(draw: st.DrawFn) -> dict:
    """x: (N, in) or (N, M, in) with N > 1; in ≠ out so that a transpose cannot go unnoticed."""
    fan_in = draw(st.integers(2, 5))
    fan_out = draw(st.integers(2, 5).filter(lambda n: n != fan_in))
    lead = draw(st.sampled_from([(3,), (2,), (2, 3), (3, 2)]))
    return {"fan_in": fan_in, "fan_out": fan_out, "lead": lead, "bias": draw(st.booleans()),
            "seed": draw(st.integers(0, 2**31))}


def make_linear(case: dict) -> tuple[sn.Linear, Tensor]:
    layer = sn.Linear(case["fan_in"], case["fan_out"], bias=case["bias"], dtype=torch.float64)
    layer.weight.copy_(randn(tuple(layer.weight.shape), case["seed"]))
    if layer.bias is not None:
        layer.bias.copy_(randn(tuple(layer.bias.shape), case["seed"] + 1))
    return layer, randn((*case["lead"], case["fan_in"]), case["seed"] + 2)


FORWARD_HINT = ("y = x·Wᵀ + b, with W of shape (out_features, in_features) and b added to every "
                "row; x may have leading dimensions (*, in_features): x @ self.weight.T works for "
                "all of them")


@pytest.mark.T01_1
@given(case=linear_cases())
def test_linear_forward(case):
    layer, x = make_linear(case)
    x_before = x.clone()
    want = F.linear(x, layer.weight, layer.bias)
    y = layer(x)
    expect_close(y, want, "the output y = x·Wᵀ + b", **TOL, hint=FORWARD_HINT)
    expect_close(x, x_before, "the input x after forward", rtol=0, atol=0,
                 hint="forward must not change its input in place")


@pytest.mark.T01_1
def test_linear_forward_without_bias():
    layer, x = make_linear({"fan_in": 4, "fan_out": 3, "lead": (5,), "bias": False, "seed": 0})
    expect_close(layer(x), x @ layer.weight.T, "the output y = x·Wᵀ (bias=False)", **TOL,
                 hint="with bias=False, self.bias is None: add it only when it is not None")


DX_HINT = "dx = G·W, shaped like x (G is grad_output)"
DW_HINT = ("dW = Gᵀ·X, with G and X flattened to (rows, features): "
           "grad_output.reshape(-1, out_features) and x.reshape(-1, in_features) — the rows are "
           "the batch and every leading dimension")
DB_HINT = ("db = Σ_rows G: the sum of grad_output over the batch and every leading dimension — a "
           "sum, not a mean (the bias is added to every row, so every row's gradient counts)")
ACCUMULATE_HINT = ("gradients accumulate: add to p.grad with self.accumulate_grad(name, grad) "
                   "(it creates p.grad on first use); never assign p.grad yourself. A second "
                   "backward without zero_grad() must double the gradients")


def linear_reference(layer: sn.Linear, x: Tensor, g: Tensor) -> tuple[Tensor, list[Tensor]]:
    params = [layer.weight] + ([layer.bias] if layer.bias is not None else [])
    return torch_grads(lambda x, *p: F.linear(x, *p), [x, *params], g)


@pytest.mark.T01_2
@given(case=linear_cases())
def test_linear_backward(case):
    layer, x = make_linear(case)
    g = randn((*case["lead"], case["fan_out"]), case["seed"] + 3)
    _, (dx, dw, *db) = linear_reference(layer, x, g)
    layer(x)
    got = layer.backward(g)
    expect_close(got, dx, "∂L/∂x (what backward returns)", **TOL, hint=DX_HINT)
    expect_close(layer.weight.grad, dw, "∂L/∂W (weight.grad)", **TOL, hint=DW_HINT)
    if layer.bias is not None:
        expect_close(layer.bias.grad, db[0], "∂L/∂b (bias.grad)", **TOL, hint=DB_HINT)


@pytest.mark.T01_2
@given(case=linear_cases())
def test_linear_gradients_accumulate(case):
    """A second forward/backward pass without zero_grad() adds the same gradients again: what it
    adds equals what the first pass stored (whether or not that was right, which the other
    tests check)."""
    layer, x = make_linear(case)
    g = randn((*case["lead"], case["fan_out"]), case["seed"] + 3)
    layer(x)
    layer.backward(g)
    names = ["weight"] + (["bias"] if layer.bias is not None else [])
    first = {name: getattr(layer, name).grad for name in names}
    for name, grad in first.items():
        expect_true(grad is not None, f"backward stored no {name}.grad: {ACCUMULATE_HINT}")
    first = {name: grad.clone() for name, grad in first.items()}
    layer(x)
    layer.backward(g)
    for name in names:
        expect_close(getattr(layer, name).grad - first[name], first[name],
                     f"what a second backward pass added to {name}.grad", **TOL,
                     hint=ACCUMULATE_HINT)


@pytest.mark.T01_2
def test_linear_backward_without_bias():
    layer, x = make_linear({"fan_in": 3, "fan_out": 2, "lead": (4,), "bias": False, "seed": 1})
    g = randn((4, 2), 5)
    _, (dx, dw) = linear_reference(layer, x, g)
    layer(x)
    expect_close(layer.backward(g), dx, "∂L/∂x (bias=False)", **TOL, hint=DX_HINT)
    expect_close(layer.weight.grad, dw, "∂L/∂W (bias=False)", **TOL, hint=DW_HINT)


# -- T01.3: Sequential, with modules written here (not Linear), so that only Sequential is tested
class Logged(sn.Module):
    """A module that records its forward and backward calls in a shared log."""

    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__()
        self.name, self.log = name, log

    def forward(self, x: Tensor) -> Tensor:
        self.log.append(f"{self.name}.forward")
        return self.compute(x)

    def backward(self, grad_output: Tensor) -> Tensor:
        self.log.append(f"{self.name}.backward")
        return self.grad(grad_output)


class Scale(Logged):
    """y = x·a over the last dimension; a: (features,) is a parameter."""

    def __init__(self, a: Tensor, name: str, log: list[str]) -> None:
        super().__init__(name, log)
        self.register_parameter("a", a)

    def compute(self, x: Tensor) -> Tensor:
        self.save_for_backward(x=x)
        return x * self.a

    def grad(self, g: Tensor) -> Tensor:
        x = self.saved["x"]
        self.accumulate_grad("a", (g * x).reshape(-1, x.shape[-1]).sum(0))
        return g * self.a

    @staticmethod
    def reference(x: Tensor, a: Tensor) -> Tensor:
        return x * a


class MatMul(Logged):
    """y = x·M; M: (in, out) is a parameter."""

    def __init__(self, m: Tensor, name: str, log: list[str]) -> None:
        super().__init__(name, log)
        self.register_parameter("m", m)

    def compute(self, x: Tensor) -> Tensor:
        self.save_for_backward(x=x)
        return x @ self.m

    def grad(self, g: Tensor) -> Tensor:
        x = self.saved["x"]
        self.accumulate_grad("m", x.reshape(-1, x.shape[-1]).T @ g.reshape(-1, g.shape[-1]))
        return g @ self.m.T

    @staticmethod
    def reference(x: Tensor, m: Tensor) -> Tensor:
        return x @ m


class Square(Logged):
    """y = x², no parameters."""

    def compute(self, x: Tensor) -> Tensor:
        self.save_for_backward(x=x)
        return x * x

    def grad(self, g: Tensor) -> Tensor:
        return 2 * self.saved["x"] * g

    @staticmethod
    def reference(x: Tensor) -> Tensor:
        return x * x


@st.composite
def chains(draw: st.DrawFn) -> tuple[tuple[str, ...], tuple[int, ...], int, int]:
    """1 to 4 modules ("scale", "matmul", "square") over feature sizes that change at every
    matmul, a batch N > 1 and a seed."""
    kinds = tuple(draw(st.lists(st.sampled_from(["scale", "matmul", "square"]), min_size=1,
                                max_size=4), label="modules"))
    sizes = [draw(st.integers(2, 4))]
    for _ in range(kinds.count("matmul")):
        sizes.append(draw(st.integers(2, 4).filter(lambda n, k=sizes[-1]: n != k)))
    return kinds, tuple(sizes), draw(st.integers(2, 3), label="N"), draw(st.integers(0, 2**31))


def build_chain(chain) -> tuple[list[Logged], list[str], Tensor]:
    """The modules of a drawn chain (sharing one log) and an input x: (N, features)."""
    kinds, sizes, n, seed = chain
    log: list[str] = []
    modules: list[Logged] = []
    size = iter(sizes[1:])
    width = sizes[0]
    for i, kind in enumerate(kinds):
        if kind == "scale":
            modules.append(Scale(randn((width,), seed + i), f"module {i}", log))
        elif kind == "matmul":
            new = next(size)
            modules.append(MatMul(randn((width, new), seed + i), f"module {i}", log))
            width = new
        else:
            modules.append(Square(f"module {i}", log))
    return modules, log, randn((n, sizes[0]), seed + 100)


def chain_function(modules: list[Logged]):
    """The chain as a torch function of (x, *parameters)."""
    def run(x: Tensor, *params: Tensor) -> Tensor:
        rest = list(params)
        for m in modules:
            x = m.reference(x, *[rest.pop(0) for _ in m.parameters()])
        return x
    return run


def chain_reference(modules: list[Logged], x: Tensor, g: Tensor):
    """∂L/∂x and every parameter's gradient of the chain, by torch autograd."""
    params = [p for m in modules for p in m.parameters()]
    _, (dx, *dps) = torch_grads(chain_function(modules), [x, *params], g)
    return dx, dps


ORDER_HINT = ("forward calls every module once, in order, each on the previous one's output "
              "(module(x) calls its forward); backward calls every module's backward once, in "
              "reverse order, each on the gradient that the module after "
              "it returned, and returns the last of them")


@pytest.mark.T01_3
@given(chain=chains())
def test_sequential_forward(chain):
    modules, log, x = build_chain(chain)
    want = chain_function(modules)(x, *[p for m in modules for p in m.parameters()])
    y = sn.Sequential(*modules)(x)
    expect_true(log == [f"module {i}.forward" for i in range(len(modules))],
                f"Sequential.forward called {log}, expected each module's forward once, in "
                f"order.\nHint: {ORDER_HINT}")
    expect_close(y, want, "the output of Sequential", rtol=1e-10, atol=1e-12, hint=ORDER_HINT)


@pytest.mark.T01_3
@given(chain=chains())
def test_sequential_backward(chain):
    modules, log, x = build_chain(chain)
    net = sn.Sequential(*modules)
    y = net(x)
    g = randn(tuple(y.shape), chain[-1] + 200)
    dx, dps = chain_reference(modules, x, g)
    log.clear()
    got = net.backward(g)
    n = len(modules)
    expect_true(log == [f"module {i}.backward" for i in reversed(range(n))],
                f"Sequential.backward called {log}, expected each module's backward once, in "
                f"reverse order.\nHint: {ORDER_HINT}")
    expect_close(got, dx, "∂L/∂x (what Sequential.backward returns)", rtol=1e-10, atol=1e-12,
                 hint="return the gradient the first module's backward returned")
    for (name, p), want in zip(net.named_parameters(), dps):
        expect_close(p.grad, want, f"∂L/∂{name}", rtol=1e-10, atol=1e-12,
                     hint="each module must receive the gradient of its own output: "
                          + ORDER_HINT)


@pytest.mark.T01_3
def test_nested_sequential():
    """A Sequential inside a Sequential is a module like any other."""
    log: list[str] = []
    inner = sn.Sequential(Square("inner square", log), Scale(randn((3,), 1), "inner scale", log))
    net = sn.Sequential(Scale(randn((3,), 2), "outer scale", log), inner)
    x, g = randn((2, 3), 3), randn((2, 3), 4)
    a_outer, a_inner = net[0].a, inner[1].a
    y_want, (dx, da_outer, da_inner) = torch_grads(
        lambda x, a, b: (x * a) ** 2 * b, [x, a_outer, a_inner], g)
    expect_close(net(x), y_want, "the output of a nested Sequential", **TOL, hint=ORDER_HINT)
    expect_close(net.backward(g), dx, "∂L/∂x of a nested Sequential", **TOL, hint=ORDER_HINT)
    expect_close(a_outer.grad, da_outer, "∂L/∂a of the outer Scale", **TOL, hint=ORDER_HINT)
    expect_close(a_inner.grad, da_inner, "∂L/∂a of the inner Scale", **TOL, hint=ORDER_HINT)
