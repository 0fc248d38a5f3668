"""SGD and Adam step for step against torch.optim, parameter groups, the optimizer state_dict, and
optimizers built before the model's weights were loaded or cast."""
from __future__ import annotations

import io

import pytest
import torch
from hypothesis import given
from strategies import adam_kwargs, impls, make_tensor, seeds, sgd_kwargs
from torch import nn
from torch.testing import assert_close

import scratchnet as sn

STEPS = 20
TOL = {"rtol": 1e-9, "atol": 1e-12}


def _variants(name: str, cls: type, torch_cls: type):
    """(label, factory, torch class) for each `impl` the optimizer offers (if it has one)."""
    offers_impl = "impl" in vars(cls([torch.zeros(1)]))
    for impl in impls if offers_impl else (None,):
        def make(*args, impl=impl, **kwargs) -> sn.Optimizer:
            opt = cls(*args, **kwargs)
            if impl is not None:
                opt.impl = impl
            return opt
        yield (f"{name} {impl}" if impl else name), make, torch_cls


OPTIMIZERS = {label: (make, torch_cls)
              for name, cls, torch_cls in (("SGD", sn.SGD, torch.optim.SGD),
                                           ("Adam", sn.Adam, torch.optim.Adam),
                                           ("AdamW", sn.AdamW, torch.optim.AdamW))
              for label, make, torch_cls in _variants(name, cls, torch_cls)}
SGDS = [k for k in OPTIMIZERS if k.startswith("SGD")]
ADAMS = [k for k in OPTIMIZERS if k.startswith("Adam ")]
ADAMWS = [k for k in OPTIMIZERS if k.startswith("AdamW")]


def small_model(seed: int, dtype: torch.dtype = torch.float64) -> sn.Sequential:
    """x: (4, 2, 3, 5) → (4, 2)."""
    torch.manual_seed(seed)
    return sn.Sequential(sn.Conv2d(2, 3, 3, padding=1), sn.Tanh(), sn.Flatten(),
                         sn.Linear(45, 2)).to(dtype)


class Problem:
    """A fixed regression batch, and one training step for each library."""

    def __init__(self, seed: int, dtype: torch.dtype = torch.float64) -> None:
        self.x = make_tensor((4, 2, 3, 5), seed, dtype=dtype)
        self.target = make_tensor((4, 2), seed + 1, dtype=dtype)
        self.crit = sn.MSELoss()

    def step(self, model: sn.Module, opt: sn.Optimizer) -> float:
        dtype = next(model.parameters()).dtype
        loss = self.crit(model(self.x.to(dtype)), self.target.to(dtype))
        opt.zero_grad()
        model.backward(self.crit.backward())
        opt.step()
        return loss.item()

    def torch_step(self, model: nn.Module, opt: torch.optim.Optimizer) -> float:
        dtype = next(model.parameters()).dtype
        with torch.enable_grad():
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(self.x.to(dtype)), self.target.to(dtype))
            loss.backward()
        opt.step()
        return loss.item()


def assert_same_training(problem: Problem, ours: tuple, theirs: tuple, steps: int = STEPS,
                         tol: dict[str, float] = TOL) -> None:
    """Run both for `steps`; losses and parameters agree after every step."""
    model, opt = ours
    torch_model, torch_opt = theirs
    for _ in range(steps):
        assert_close(problem.step(model, opt), problem.torch_step(torch_model, torch_opt), **tol)
        for (name, p), q in zip(model.named_parameters(), torch_model.parameters(), strict=True):
            assert_close(p, q.detach(), **tol, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("name", SGDS)
@given(kwargs=sgd_kwargs(), seed=seeds)
def test_sgd_matches_torch(name, kwargs, seed):
    make, torch_cls = OPTIMIZERS[name]
    model = small_model(seed)
    torch_model = sn.to_torch(model)
    assert_same_training(Problem(seed), (model, make(model.parameters(), **kwargs)),
                         (torch_model, torch_cls(torch_model.parameters(), **kwargs)))


@pytest.mark.parametrize("name", ADAMS)
@given(kwargs=adam_kwargs(), seed=seeds)
def test_adam_matches_torch(name, kwargs, seed):
    make, torch_cls = OPTIMIZERS[name]
    model = small_model(seed)
    torch_model = sn.to_torch(model)
    assert_same_training(Problem(seed), (model, make(model.parameters(), **kwargs)),
                         (torch_model, torch_cls(torch_model.parameters(), **kwargs)))


@pytest.mark.parametrize("name", ADAMWS)
@given(kwargs=adam_kwargs(), seed=seeds)
def test_adamw_matches_torch(name, kwargs, seed):
    make, torch_cls = OPTIMIZERS[name]
    del kwargs["decoupled_weight_decay"]
    kwargs["weight_decay"] *= 10
    model = small_model(seed)
    torch_model = sn.to_torch(model)
    assert_same_training(Problem(seed), (model, make(model.parameters(), **kwargs)),
                         (torch_model, torch_cls(torch_model.parameters(), **kwargs)))


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_maximize_matches_torch(name):
    """Climbing the loss diverges, which amplifies rounding: 5 small steps."""
    make, torch_cls = OPTIMIZERS[name]
    kwargs = {"lr": 1e-3, "maximize": True, "weight_decay": 1e-2}
    kwargs.update({"momentum": 0.9} if name in SGDS else {"amsgrad": True})
    model = small_model(5)
    torch_model = sn.to_torch(model)
    assert_same_training(Problem(5), (model, make(model.parameters(), **kwargs)),
                         (torch_model, torch_cls(torch_model.parameters(), **kwargs)), steps=5)


def parameter_groups(model) -> list[dict]:
    """Conv weights with their own lr and momentum/betas, the rest on the defaults."""
    conv, linear = model[0], model[3]
    return [{"params": list(conv.parameters()), "lr": 0.05},
            {"params": list(linear.parameters()), "weight_decay": 0.1}]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_parameter_groups_match_torch(name):
    make, torch_cls = OPTIMIZERS[name]
    extra = {"momentum": 0.9} if name in SGDS else {"betas": (0.8, 0.99)}
    model = small_model(0)
    torch_model = sn.to_torch(model)
    opt = make(parameter_groups(model), lr=0.01, **extra)
    torch_opt = torch_cls(parameter_groups(torch_model), lr=0.01, **extra)
    for group, torch_group in zip(opt.param_groups, torch_opt.param_groups, strict=True):
        assert len(group["params"]) == len(torch_group["params"])
        assert {k: v for k, v in group.items() if k != "params"} == \
            {k: torch_group[k] for k in group if k != "params"}
    assert_same_training(Problem(0), (model, opt), (torch_model, torch_opt))


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_state_dict_round_trip_resumes_training(name):
    """Train 10 steps, save optimizer and model to bytes, restore both into fresh objects,
    train 10 more: the same trajectory as torch's uninterrupted 20 steps."""
    make, torch_cls = OPTIMIZERS[name]
    kwargs = {"lr": 0.05, "momentum": 0.9, "nesterov": True} if name in SGDS else {"lr": 0.05}
    problem = Problem(3)
    model = small_model(3)
    torch_model = sn.to_torch(model)
    opt, torch_opt = make(model.parameters(), **kwargs), torch_cls(torch_model.parameters(),
                                                                       **kwargs)
    assert_same_training(problem, (model, opt), (torch_model, torch_opt), steps=10)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    assert sorted(saved["opt"]["state"]) == list(range(len(list(model.parameters()))))
    assert [g["params"] for g in saved["opt"]["param_groups"]] == [[0, 1, 2, 3]]
    resumed = small_model(99)
    resumed.load_state_dict(saved["model"])
    resumed_opt = make(resumed.parameters(), lr=1.0)
    resumed_opt.load_state_dict(saved["opt"])
    assert resumed_opt.param_groups[0]["lr"] == 0.05
    assert_same_training(problem, (resumed, resumed_opt), (torch_model, torch_opt), steps=10)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_built_before_load_state_dict_trains_the_loaded_weights(name):
    make, torch_cls = OPTIMIZERS[name]
    model, pretrained = small_model(0), small_model(1)
    torch_model = sn.to_torch(model)
    opt, torch_opt = make(model.parameters(), lr=0.05), torch_cls(torch_model.parameters(),
                                                                      lr=0.05)
    model.load_state_dict(pretrained.state_dict())
    torch_model.load_state_dict(sn.to_torch(pretrained).state_dict())
    problem = Problem(0)
    first = problem.crit(model(problem.x), problem.target).item()
    assert_same_training(problem, (model, opt), (torch_model, torch_opt))
    assert problem.crit(model(problem.x), problem.target).item() < first


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_built_before_to_float64_trains_the_cast_weights(name):
    make, torch_cls = OPTIMIZERS[name]
    model = small_model(0, torch.float32)
    torch_model = sn.to_torch(model)
    opt, torch_opt = make(model.parameters(), lr=0.05), torch_cls(torch_model.parameters(),
                                                                      lr=0.05)
    model.to(torch.float64)
    torch_model.to(torch.float64)
    assert_same_training(Problem(0), (model, opt), (torch_model, torch_opt))
    assert all(p.dtype == torch.float64 for p in model.parameters())


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_state_follows_a_cast_in_mid_training(name):
    """torch.optim.Adam fails after such a cast (its state stays float32); ours casts its state.
    The reference is torch with its state cast by hand at the same moment; the first steps ran
    in float32, so the trajectories agree to float32 precision."""
    make, torch_cls = OPTIMIZERS[name]
    kwargs = {"lr": 0.05, "momentum": 0.9} if name in SGDS else {"lr": 0.05}
    problem = Problem(0)
    model = small_model(0, torch.float32)
    torch_model = sn.to_torch(model)
    opt, torch_opt = make(model.parameters(), **kwargs), torch_cls(torch_model.parameters(),
                                                                       **kwargs)
    for _ in range(5):
        problem.step(model, opt)
        problem.torch_step(torch_model, torch_opt)
    model.double()
    torch_model.double()
    for state in torch_opt.state.values():
        for key, value in state.items():
            if key != "step":
                state[key] = value.double()
    assert_same_training(problem, (model, opt), (torch_model, torch_opt), steps=5,
                         tol={"rtol": 1e-4, "atol": 1e-6})
    assert all(v.dtype == torch.float64 for s in opt.state.values() for v in s.values()
               if isinstance(v, torch.Tensor))


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_parameters_without_gradient_are_left_alone(name):
    model = small_model(0)
    opt = OPTIMIZERS[name][0](model.parameters(), lr=0.1)
    before = [p.clone() for p in model.parameters()]
    opt.step()
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))
    assert opt.state == {}


def test_invalid_hyper_parameters():
    params = list(small_model(0).parameters())
    with pytest.raises(ValueError, match="SGD: invalid lr"):
        sn.SGD(params, lr=-1)
    with pytest.raises(ValueError, match="Nesterov"):
        sn.SGD(params, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Adam: invalid"):
        sn.Adam(params, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="empty parameter list"):
        sn.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="expects tensors"):
        sn.Adam([1.0, 2.0])
    opt = sn.SGD(params, lr=0.1)
    with pytest.raises(ValueError, match="do not match"):
        opt.load_state_dict(sn.SGD(params[:2], lr=0.1).state_dict())
