"""Notebook 01 · Modules and the chain rule: T01.1 Linear.forward, T01.2 Linear.backward,
T01.3 Sequential.forward/backward. The student's side: probes/t01_modules.py. References: torch
(F.linear, autograd) in float64."""
from __future__ import annotations

import pytest
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor

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


def make_linear(case: dict) -> tuple[Tensor, Tensor | None, Tensor]:
    """A Linear layer's weight (out, in), bias (out,) or None, and an input x: (*lead, in)."""
    weight = randn((case["fan_out"], case["fan_in"]), case["seed"])
    bias = randn((case["fan_out"],), case["seed"] + 1) if case["bias"] else None
    return weight, bias, randn((*case["lead"], case["fan_in"]), case["seed"] + 2)


FORWARD_HINT = ("y = x·Wᵀ + b, with W of shape (out_features, in_features) and b added to every "
                "row; x may have leading dimensions (*, in_features): x @ self.weight.T works for "
                "all of them")


@pytest.mark.T01_1
@given(case=linear_cases())
def test_linear_forward(student, case):
    weight, bias, x = make_linear(case)
    got = student.linear_forward(weight, bias, x)
    expect_close(got["y"], F.linear(x, weight, bias), "the output y = x·Wᵀ + b", **TOL,
                 hint=FORWARD_HINT)
    expect_close(got["x"], x, "the input x after forward", rtol=0, atol=0,
                 hint="forward must not change its input in place")


@pytest.mark.T01_1
def test_linear_forward_without_bias(student):
    weight, bias, x = make_linear({"fan_in": 4, "fan_out": 3, "lead": (5,), "bias": False,
                                   "seed": 0})
    expect_close(student.linear_forward(weight, bias, x)["y"], x @ weight.T,
                 "the output y = x·Wᵀ (bias=False)", **TOL,
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


def linear_reference(weight: Tensor, bias: Tensor | None, x: Tensor,
                     g: Tensor) -> list[Tensor]:
    """[∂L/∂x, ∂L/∂W] (+ [∂L/∂b] with a bias), by torch autograd."""
    params = [weight] + ([bias] if bias is not None else [])
    return torch_grads(lambda x, *p: F.linear(x, *p), [x, *params], g)[1]


@pytest.mark.T01_2
@given(case=linear_cases())
def test_linear_backward(student, case):
    weight, bias, x = make_linear(case)
    g = randn((*case["lead"], case["fan_out"]), case["seed"] + 3)
    dx, dw, *db = linear_reference(weight, bias, x, g)
    got = student.linear_backward(weight, bias, x, g)
    grads = got["grads"][0]
    expect_close(got["dx"], dx, "∂L/∂x (what backward returns)", **TOL, hint=DX_HINT)
    expect_close(grads["weight"], dw, "∂L/∂W (weight.grad)", **TOL, hint=DW_HINT)
    if bias is not None:
        expect_close(grads["bias"], db[0], "∂L/∂b (bias.grad)", **TOL, hint=DB_HINT)


@pytest.mark.T01_2
@given(case=linear_cases())
def test_linear_gradients_accumulate(student, case):
    """A second forward/backward pass without zero_grad() adds the same gradients again: what it
    adds equals what the first pass stored (whether or not that was right, which the other
    tests check)."""
    weight, bias, x = make_linear(case)
    g = randn((*case["lead"], case["fan_out"]), case["seed"] + 3)
    first, second = student.linear_backward(weight, bias, x, g, passes=2)["grads"]
    for name, grad in first.items():
        expect_true(grad is not None, f"backward stored no {name}.grad: {ACCUMULATE_HINT}")
    for name, grad in first.items():
        expect_close(second[name] - grad, grad,
                     f"what a second backward pass added to {name}.grad", **TOL,
                     hint=ACCUMULATE_HINT)


@pytest.mark.T01_2
def test_linear_backward_without_bias(student):
    weight, bias, x = make_linear({"fan_in": 3, "fan_out": 2, "lead": (4,), "bias": False,
                                   "seed": 1})
    g = randn((4, 2), 5)
    dx, dw = linear_reference(weight, bias, x, g)
    got = student.linear_backward(weight, bias, x, g)
    expect_close(got["dx"], dx, "∂L/∂x (bias=False)", **TOL, hint=DX_HINT)
    expect_close(got["grads"][0]["weight"], dw, "∂L/∂W (bias=False)", **TOL, hint=DW_HINT)


# -- T01.3: Sequential, with modules written in probes/t01_modules.py (not Linear), so that only
# Sequential is tested. A chain: "scale" (y = x·a over the last dimension), "matmul" (y = x·M)
# and "square" (y = x²) modules, each logging its forward and backward calls.
FUNCTIONS = {"scale": lambda x, a: x * a, "matmul": lambda x, m: x @ m, "square": lambda x: x * x}


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


def build_chain(chain) -> tuple[list[dict], Tensor]:
    """The modules of a drawn chain (their descriptions, probes/t01_modules.build) and an input
    x: (N, features)."""
    kinds, sizes, n, seed = chain
    modules: list[dict] = []
    size = iter(sizes[1:])
    width = sizes[0]
    for i, kind in enumerate(kinds):
        module = {"kind": kind, "name": f"module {i}"}
        if kind == "scale":
            module["param"] = randn((width,), seed + i)
        elif kind == "matmul":
            new = next(size)
            module["param"] = randn((width, new), seed + i)
            width = new
        modules.append(module)
    return modules, randn((n, sizes[0]), seed + 100)


def chain_function(modules: list[dict]):
    """The chain as a torch function of (x, *parameters)."""
    def run(x: Tensor, *params: Tensor) -> Tensor:
        rest = list(params)
        for m in modules:
            x = FUNCTIONS[m["kind"]](x, *([rest.pop(0)] if "param" in m else []))
        return x
    return run


def chain_reference(modules: list[dict], x: Tensor, g: Tensor):
    """y, ∂L/∂x and every parameter's gradient of the chain, by torch autograd."""
    params = [m["param"] for m in modules if "param" in m]
    y, (dx, *dps) = torch_grads(chain_function(modules), [x, *params], g)
    return y, dx, dps


ORDER_HINT = ("forward calls every module once, in order, each on the previous one's output "
              "(module(x) calls its forward); backward calls every module's backward once, in "
              "reverse order, each on the gradient that the module after "
              "it returned, and returns the last of them")


@pytest.mark.T01_3
@given(chain=chains())
def test_sequential_forward(student, chain):
    modules, x = build_chain(chain)
    want = chain_function(modules)(x, *[m["param"] for m in modules if "param" in m])
    got = student.sequential({"kind": "sequential", "modules": modules}, x)
    log = got["forward_calls"]
    expect_true(log == [f"module {i}.forward" for i in range(len(modules))],
                f"Sequential.forward called {log}, expected each module's forward once, in "
                f"order.\nHint: {ORDER_HINT}")
    expect_close(got["y"], want, "the output of Sequential", rtol=1e-10, atol=1e-12,
                 hint=ORDER_HINT)


@pytest.mark.T01_3
@given(chain=chains())
def test_sequential_backward(student, chain):
    modules, x = build_chain(chain)
    want_y = chain_function(modules)(x, *[m["param"] for m in modules if "param" in m])
    g = randn(tuple(want_y.shape), chain[-1] + 200)
    _, dx, dps = chain_reference(modules, x, g)
    got = student.sequential({"kind": "sequential", "modules": modules}, x, g)
    log, n = got["backward_calls"], len(modules)
    expect_true(log == [f"module {i}.backward" for i in reversed(range(n))],
                f"Sequential.backward called {log}, expected each module's backward once, in "
                f"reverse order.\nHint: {ORDER_HINT}")
    expect_close(got["dx"], dx, "∂L/∂x (what Sequential.backward returns)", rtol=1e-10,
                 atol=1e-12, hint="return the gradient the first module's backward returned")
    expect_true(len(got["grads"]) == len(dps),
                f"Sequential has {len(got['grads'])} parameters, expected {len(dps)}: "
                f"named_parameters() should list each module's")
    for (name, grad), want in zip(got["grads"], dps):
        expect_close(grad, want, f"∂L/∂{name}", rtol=1e-10, atol=1e-12,
                     hint="each module must receive the gradient of its own output: "
                          + ORDER_HINT)


@pytest.mark.T01_3
def test_nested_sequential(student):
    """A Sequential inside a Sequential is a module like any other."""
    a_outer, a_inner = randn((3,), 2), randn((3,), 1)
    inner = {"kind": "sequential", "modules": [{"kind": "square", "name": "inner square"},
                                               {"kind": "scale", "name": "inner scale",
                                                "param": a_inner}]}
    net = {"kind": "sequential", "modules": [{"kind": "scale", "name": "outer scale",
                                              "param": a_outer}, inner]}
    x, g = randn((2, 3), 3), randn((2, 3), 4)
    y_want, (dx, da_outer, da_inner) = torch_grads(
        lambda x, a, b: (x * a) ** 2 * b, [x, a_outer, a_inner], g)
    got = student.sequential(net, x, g)
    grads = dict(got["grads"])
    expect_close(got["y"], y_want, "the output of a nested Sequential", **TOL, hint=ORDER_HINT)
    expect_close(got["dx"], dx, "∂L/∂x of a nested Sequential", **TOL, hint=ORDER_HINT)
    expect_close(grads.get("0.a"), da_outer, "∂L/∂a of the outer Scale", **TOL, hint=ORDER_HINT)
    expect_close(grads.get("1.1.a"), da_inner, "∂L/∂a of the inner Scale", **TOL,
                 hint=ORDER_HINT)
