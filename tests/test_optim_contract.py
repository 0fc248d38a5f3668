"""torch.optim's contract beyond the update rules: constructor signatures and validation, named
parameters, state_dicts that move between torch and scratchnet, and the learning-rate
schedulers step for step."""
from __future__ import annotations

import copy
import inspect

import pytest
import torch
from torch import nn

import scratchnet as sn
from scratchnet.optim import lr_scheduler

PAIRS = [(sn.SGD, torch.optim.SGD), (sn.Adam, torch.optim.Adam), (sn.AdamW, torch.optim.AdamW),
         (lr_scheduler.LRScheduler, torch.optim.lr_scheduler.LRScheduler),
         (lr_scheduler.StepLR, torch.optim.lr_scheduler.StepLR),
         (lr_scheduler.CosineAnnealingLR, torch.optim.lr_scheduler.CosineAnnealingLR),
         (lr_scheduler.ReduceLROnPlateau, torch.optim.lr_scheduler.ReduceLROnPlateau)]


def _shape(cls: type) -> list[tuple[str, object, object]]:
    """(name, kind, default) of each constructor parameter: what a caller can rely on."""
    return [(p.name, p.kind, p.default)
            for p in inspect.signature(cls.__init__).parameters.values()]


@pytest.mark.parametrize("ours, theirs", PAIRS, ids=[p[0].__name__ for p in PAIRS])
def test_constructor_signature_is_torchs(ours, theirs):
    assert _shape(ours) == _shape(theirs)


def params(seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(3, 2, generator=g, dtype=torch.float64),
            torch.randn(3, generator=g, dtype=torch.float64)]


@pytest.mark.parametrize("cls", [sn.SGD, sn.Adam, sn.AdamW])
def test_a_bare_tensor_is_refused_not_split_into_rows(cls):
    with pytest.raises(TypeError, match="iterable of Tensors or dicts, but got "
                                        "torch.DoubleTensor.*wrap it in a list"):
        cls(params()[0], lr=0.1)


@pytest.mark.parametrize("cls", [sn.SGD, sn.Adam])
def test_a_parameter_in_two_groups_is_refused(cls):
    w, b = params()
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter "
                                         "group"):
        cls([{"params": [w, b]}, {"params": [w]}], lr=0.1)


def test_a_parameter_twice_in_one_group_warns_as_torch_does():
    w, _ = params()
    with pytest.warns(UserWarning, match="same parameter twice"):
        sn.SGD([w, w], lr=0.1)


@pytest.mark.parametrize("cls, kwargs, message", [
    (sn.SGD, {"lr": torch.tensor([0.1, 0.2])}, r"SGD: lr as a tensor must have 1 element"),
    (sn.Adam, {"lr": torch.ones(2)}, r"Adam: lr as a tensor must have 1 element"),
    (sn.Adam, {"betas": (torch.tensor(0.9), 0.999)}, "betas must be both floats or both "
                                                     "tensors, got Tensor and float"),
    (sn.Adam, {"betas": (torch.ones(2), torch.ones(2))}, r"betas\[0\] as a tensor must have"),
])
def test_tensor_hyper_parameters_are_checked(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(params(), **kwargs)


def test_one_element_tensor_hyper_parameters_act_as_numbers():
    a, b = params(), params()
    for p, q in zip(a, b):
        p.grad, q.grad = torch.ones_like(p), torch.ones_like(q)
    f64 = {"dtype": torch.float64}
    sn.Adam(a, lr=torch.tensor(0.1, **f64),
            betas=(torch.tensor(0.8, **f64), torch.tensor(0.9, **f64))).step()
    sn.Adam(b, lr=0.1, betas=(0.8, 0.9)).step()
    assert all(torch.equal(p, q) for p, q in zip(a, b))


@pytest.mark.parametrize("ours, theirs", PAIRS[:3], ids=["SGD", "Adam", "AdamW"])
def test_named_parameters_are_accepted_as_torch_accepts_them(ours, theirs):
    model = sn.Linear(2, 3).double()
    opt = ours(model.named_parameters(), lr=0.1)
    torch_opt = theirs(sn.to_torch(model).named_parameters(), lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]
    assert {k: v for k, v in opt.param_groups[0].items() if k != "params"} == \
        {k: v for k, v in torch_opt.param_groups[0].items() if k != "params"}
    with pytest.raises(ValueError, match="all parameters must be given with names or all"):
        ours([("w", params()[0]), params()[1]], lr=0.1)


def _train(model, opt, steps: int, torch_model: bool) -> None:
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(4, 2, generator=g, dtype=torch.float64)
        if torch_model:
            with torch.enable_grad():
                opt.zero_grad()
                (model(x) ** 2).sum().backward()
        else:
            opt.zero_grad()
            y = model(x)
            model.backward(2 * y)
        opt.step()


def test_a_loaded_state_is_not_shared_with_the_optimizer_that_saved_it():
    a, b = params(), params()
    for p, q in zip(a, b):
        p.grad, q.grad = torch.ones_like(p), torch.ones_like(q)
    source = sn.SGD(a, lr=0.1, momentum=0.9)
    source.step()
    loaded = sn.SGD(b, lr=0.1, momentum=0.9)
    loaded.load_state_dict(source.state_dict())
    saved = loaded.state[b[0]]["momentum_buffer"].clone()
    source.step()
    assert torch.equal(loaded.state[b[0]]["momentum_buffer"], saved)


@pytest.mark.parametrize("name, kwargs", [
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("Adam", {"lr": 0.05}), ("Adam", {"lr": 0.05, "amsgrad": True, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.05}),
])
def test_state_dicts_move_between_torch_and_scratchnet(name, kwargs):
    """5 steps in torch, its state_dict loaded into scratchnet, 5 more in each; and back."""
    ours_cls, torch_cls = getattr(sn, name), getattr(torch.optim, name)
    torch.manual_seed(0)
    model = sn.Linear(2, 3).double()
    torch_model = sn.to_torch(model)
    torch_opt = torch_cls(torch_model.parameters(), **kwargs)
    _train(torch_model, torch_opt, 5, torch_model=True)
    model.load_state_dict({k: v.detach() for k, v in torch_model.state_dict().items()})
    opt = ours_cls(model.parameters(), lr=1.0)
    opt.load_state_dict(torch_opt.state_dict())
    assert opt.param_groups[0]["lr"] == kwargs["lr"]
    _train(torch_model, torch_opt, 5, torch_model=True)
    _train(model, opt, 5, torch_model=False)
    for p, q in zip(model.parameters(), torch_model.parameters()):
        torch.testing.assert_close(p, q.detach(), rtol=1e-12, atol=1e-14)
    back = sn.to_torch(model)
    back_opt = torch_cls(back.parameters(), lr=1.0)
    back_opt.load_state_dict(copy.deepcopy(opt.state_dict()))    # torch shares what it loads
    _train(back, back_opt, 5, torch_model=True)
    _train(model, opt, 5, torch_model=False)
    for p, q in zip(model.parameters(), back.parameters()):
        torch.testing.assert_close(p, q.detach(), rtol=1e-12, atol=1e-14)


SCHEDULERS = [
    ("StepLR", {"step_size": 3, "gamma": 0.5}),
    ("CosineAnnealingLR", {"T_max": 7, "eta_min": 1e-4}),
]


@pytest.mark.parametrize("name, kwargs", SCHEDULERS, ids=[s[0] for s in SCHEDULERS])
def test_schedulers_step_for_step_and_state_dicts_equal(name, kwargs):
    ours_opt = sn.SGD([{"params": params()[:1]}, {"params": params()[1:], "lr": 0.3}], lr=0.1)
    w, b = (p.clone().requires_grad_() for p in params())
    torch_opt = torch.optim.SGD([{"params": [w]}, {"params": [b], "lr": 0.3}], lr=0.1)
    ours = getattr(lr_scheduler, name)(ours_opt, **kwargs)
    theirs = getattr(torch.optim.lr_scheduler, name)(torch_opt, **kwargs)
    for epoch in range(25):
        torch_opt.step()
        ours_opt.step()
        ours.step()
        theirs.step()
        assert ours.get_last_lr() == theirs.get_last_lr(), epoch
        assert [g["lr"] for g in ours_opt.param_groups] == \
            [g["lr"] for g in torch_opt.param_groups]
        assert ours.state_dict() == theirs.state_dict()
        if epoch == 10:                              # resume each from the other's state
            ours.load_state_dict(theirs.state_dict())
            theirs.load_state_dict(ours.state_dict())


def test_reduce_lr_on_plateau_follows_torch():
    ours_opt = sn.Adam(params(), lr=0.1)
    torch_opt = torch.optim.Adam([p.clone().requires_grad_() for p in params()], lr=0.1)
    kwargs = {"mode": "max", "factor": 0.5, "patience": 2, "cooldown": 1, "min_lr": 0.01}
    ours = lr_scheduler.ReduceLROnPlateau(ours_opt, **kwargs)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(torch_opt, **kwargs)
    metrics = [1, 2, 2, 2, 2, 2, 3] + [3] * 20
    lrs = []
    for metric in metrics:
        ours.step(metric)
        theirs.step(metric)
        assert ours.get_last_lr() == theirs.get_last_lr()
        assert ours.state_dict() == theirs.state_dict()
        lrs.append(ours.get_last_lr()[0])
    assert lrs[0] == 0.1 and lrs[-1] == 0.01
    with pytest.raises(ValueError, match="factor must be < 1.0"):
        lr_scheduler.ReduceLROnPlateau(ours_opt, factor=1.0)


def test_a_scheduler_drives_fit_through_a_callback():
    """A course script's pattern: scheduler.step() once per epoch."""
    from scratchnet.models import build_model
    from scratchnet.train import fit

    torch.manual_seed(0)
    model = build_model("course", channels=4)
    opt = sn.Adam(model.parameters(), lr=1e-2)
    scheduler = lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    data = torch.randint(0, 256, (8, 3, 8, 8), dtype=torch.uint8)
    fit(model, (data, data), epochs=3, optimizer=opt, device="cpu", progress=False,
        callback=lambda history: scheduler.step())
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-2 / 8)


def test_torch_nn_module_still_is_the_reference():
    assert isinstance(sn.to_torch(sn.Linear(2, 2)), nn.Module)
