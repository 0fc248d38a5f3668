"""The core is built from plain tensor operations: no torch.nn modules or functionals (except
F.fold/F.unfold), no autograd, no torch.optim.

Dynamically: a full train step of every layer, loss and optimizer runs inside
`torch.inference_mode()` while the forbidden entry points raise. Statically: the core's source
imports and names none of them.
"""
from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from strategies import make_tensor
from torch import nn

import scratchnet as sn

PACKAGE = Path(sn.__file__).resolve().parent
NON_CORE = {"gradcheck", "interop", "data", "train", "models", "course", "cli", "widgets",
            "explorer", "figures", "benchmark", "baselines", "coursework", "__main__"}
ALLOWED_FUNCTIONALS = {"fold", "unfold"}


class ForbiddenCall(AssertionError):
    pass


def _forbidden(name: str) -> Callable[..., None]:
    def raiser(*args: object, **kwargs: object) -> None:
        raise ForbiddenCall(f"the core called {name}")
    return raiser


def _functionals() -> list[str]:
    """Every public function of torch.nn.functional (defined there or a torch builtin exposed
    there), not the typing names and dispatch helpers it imports."""
    names = []
    for name in dir(F):
        obj = getattr(F, name)
        if name.startswith("_") or name in ALLOWED_FUNCTIONALS or isinstance(obj, type):
            continue
        if callable(obj) and getattr(obj, "__module__", None) in (
                "torch.nn.functional", "torch", "torch._C._nn"):
            names.append(name)
    return names


FUNCTIONALS = _functionals()


def _optimizer_classes() -> list[type]:
    classes, todo = [], [torch.optim.Optimizer]
    while todo:
        cls = todo.pop()
        classes.append(cls)
        todo.extend(cls.__subclasses__())
    return [cls for cls in classes if "step" in vars(cls)]


@pytest.fixture
def forbidden(monkeypatch):
    """Patch every forbidden entry point to raise ForbiddenCall for the test's duration."""
    for name in FUNCTIONALS:
        monkeypatch.setattr(F, name, _forbidden(f"torch.nn.functional.{name}"))
    monkeypatch.setattr(nn.Module, "__call__", _forbidden("torch.nn.Module.__call__"))
    monkeypatch.setattr(nn.Module, "__init__", _forbidden("torch.nn.Module.__init__"))
    monkeypatch.setattr(torch.autograd, "backward", _forbidden("torch.autograd.backward"))
    monkeypatch.setattr(torch.autograd, "grad", _forbidden("torch.autograd.grad"))
    monkeypatch.setattr(torch.Tensor, "backward", _forbidden("torch.Tensor.backward"))
    monkeypatch.setattr(torch.Tensor, "requires_grad_", _forbidden("Tensor.requires_grad_"))
    for cls in _optimizer_classes():
        monkeypatch.setattr(cls, "step", _forbidden(f"{cls.__name__}.step"))


def test_the_patches_bite(forbidden):
    """Each forbidden entry point really raises, while fold/unfold keep working."""
    assert len(FUNCTIONALS) > 100 and {"conv2d", "relu", "linear", "mse_loss"} <= set(FUNCTIONALS)
    x = torch.randn(1, 2, 4, 4)
    for attempt in (lambda: F.conv2d(x, torch.randn(1, 2, 3, 3)), lambda: F.relu(x),
                    lambda: F.mse_loss(x, x), lambda: F.interpolate(x, scale_factor=2),
                    lambda: F.max_pool2d(x, 2), lambda: F.linear(x, torch.randn(3, 4)),
                    lambda: nn.Linear(2, 2), lambda: x.requires_grad_(),
                    lambda: torch.autograd.grad, lambda: x.backward(),
                    lambda: torch.optim.SGD.step(None), lambda: torch.optim.Adam.step(None)):
        with pytest.raises(ForbiddenCall):
            result = attempt()
            if callable(result):
                result()
    cols = F.unfold(x, 3)
    assert F.fold(cols, (4, 4), 3).shape == x.shape


def _with_impl(obj, impl: str):
    """A module (every conv-like layer in it) or optimizer switched to the given impl."""
    for m in obj.modules() if isinstance(obj, sn.Module) else (obj,):
        if "impl" in vars(m):
            m.impl = impl
    return obj


LAYERS: dict[str, Callable[[], sn.Module]] = {
    "Conv2d": lambda: sn.Conv2d(3, 6, 3, stride=(1, 2), padding=1, groups=3),
    "Conv2d reference": lambda: _with_impl(sn.Conv2d(3, 4, (2, 3), dilation=2), "reference"),
    "ConvTranspose2d": lambda: sn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=1),
    "ConvTranspose2d reference": lambda: _with_impl(
        sn.ConvTranspose2d(3, 6, 2, stride=2, groups=3), "reference"),
    "Upsampling": lambda: sn.Upsampling(3, 4, 3, scale_factor=(2, 3), padding=1),
    "Upsampling strided": lambda: sn.Upsampling(3, 4, 3, stride=2),
    "Upsampling reference": lambda: _with_impl(sn.Upsampling(3, 4, 3, padding=1), "reference"),
    "NearestUpsampling": lambda: sn.NearestUpsampling(scale_factor=(2, 1)),
    "ReLU": lambda: sn.ReLU(),
    "LeakyReLU": lambda: sn.LeakyReLU(0.1),
    "Sigmoid": lambda: sn.Sigmoid(),
    "Tanh": lambda: sn.Tanh(),
    "Linear": lambda: sn.Linear(5, 2),
    "Flatten": lambda: sn.Flatten(),
    "MaxPool2d": lambda: sn.MaxPool2d(2, padding=1),
    "Identity": lambda: sn.Identity(),
    "Sequential": lambda: sn.Sequential(sn.Conv2d(3, 3, 1), sn.ReLU()),
    "Residual": lambda: sn.Residual(sn.Conv2d(3, 3, 3, padding=1)),
    "Concat": lambda: sn.Concat(sn.Conv2d(3, 2, 1), sn.MaxPool2d(3, 1, 1)),
}
OPTIMIZERS: dict[str, Callable[[list], sn.Optimizer]] = {
    "SGD": lambda params: sn.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
    "SGD dampened": lambda params: sn.SGD(params, lr=0.1, momentum=0.5, dampening=0.5),
    "Adam": lambda params: sn.Adam(params, lr=0.1, weight_decay=0.1),
    "Adam reference": lambda params: _with_impl(sn.Adam(params, lr=0.1), "reference"),
}


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("layer", LAYERS)
def test_train_step_without_autograd_or_torch_nn(forbidden, layer, optimizer):
    """The layer after a 1×1 convolution, so that every case has parameters to train."""
    with torch.inference_mode():
        model = sn.Sequential(sn.Conv2d(3, 3, 1), LAYERS[layer]())
        opt = OPTIMIZERS[optimizer](list(model.parameters()))
        x = make_tensor((2, 3, 4, 5), 0, dtype=torch.float32)
        before = [p.clone() for p in model.parameters()]
        for reduction in ("mean", "sum", "none"):
            y = model(x)
            crit = sn.MSELoss(reduction)
            loss = crit(y, torch.zeros_like(y))
            opt.zero_grad()
            model.backward(crit.backward(torch.ones_like(loss)))
            opt.step()
        assert all(not torch.equal(p, q) for p, q in zip(model.parameters(), before))


def test_module_and_optimizer_bookkeeping_without_autograd(forbidden):
    with torch.inference_mode():
        model = sn.Sequential(sn.Conv2d(3, 4, 3), sn.Tanh(), sn.Flatten(), sn.Linear(24, 1))
        opt = sn.Adam(model.parameters())
        x = torch.randn(2, 3, 4, 5)
        y = model(x)
        model.backward(torch.ones_like(y))
        opt.step()
        model.zero_grad(set_to_none=False)
        model.zero_grad()
        opt.load_state_dict(opt.state_dict())
        model.load_state_dict({k: v.clone() for k, v in model.state_dict().items()})
        model.double()
        with sn.no_grad():
            model(x.double())
        model.eval().train()
        assert sn.psnr(x, x + 0.1).item() == pytest.approx(20.0)
        repr(model), repr(opt)


def core_files() -> list[Path]:
    files = []
    for path in sorted(PACKAGE.rglob("*.py")):
        top = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if top not in NON_CORE:
            files.append(path)
    return files


def _dotted(node: ast.AST) -> str | None:
    """`torch.nn.functional.fold` for that attribute chain, None if it does not start at a name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def violations(source: str) -> list[str]:
    """What a core file must not contain: torch.nn beyond F.fold/F.unfold, torch.autograd,
    torch.optim, a tensor's requires_grad (read, set, or passed to a factory). Module's own
    `requires_grad_` method (torch's name for freezing, which touches no tensor flag) is allowed."""
    found = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("requires_grad", "requires_grad_"):
            found.append(f"uses .{node.attr}")
        elif isinstance(node, ast.keyword) and node.arg == "requires_grad":
            found.append("passes requires_grad=")
    functional_aliases = set()
    torch_aliases = {"torch"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "torch.nn.functional" and alias.asname:
                    functional_aliases.add(alias.asname)
                elif alias.name == "torch" and alias.asname:
                    torch_aliases.add(alias.asname)
                elif alias.name.startswith(("torch.nn", "torch.autograd", "torch.optim")):
                    found.append(f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = {alias.name for alias in node.names}
            if node.module == "torch" and names & {"nn", "autograd", "optim"}:
                found.append(f"from torch import {sorted(names & {'nn', 'autograd', 'optim'})}")
            elif node.module == "torch.nn.functional" and not names <= ALLOWED_FUNCTIONALS:
                found.append(f"from torch.nn.functional import {sorted(names)}")
            elif node.module.startswith(("torch.nn", "torch.autograd", "torch.optim")) \
                    and node.module != "torch.nn.functional":
                found.append(f"from {node.module} import ...")
    attribute_bases = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    allowed = {f"{a}.{f}" for a in functional_aliases for f in ALLOWED_FUNCTIONALS}
    allowed |= {f"{t}.nn.functional.{f}" for t in torch_aliases for f in ALLOWED_FUNCTIONALS}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            name = _dotted(node)
            if name is None or any(name == a or a.startswith(name + ".") for a in allowed):
                continue
            head, _, rest = name.partition(".")
            if head in functional_aliases or head in torch_aliases and rest.startswith(("nn", "autograd", "optim")):
                found.append(f"uses {name}")
        elif isinstance(node, ast.Name) and node.id in functional_aliases \
                and id(node) not in attribute_bases:
            found.append(f"uses {node.id} other than as {node.id}.fold/unfold")
    return sorted(set(found))


def test_static_check_finds_violations():
    assert violations("import torch.nn as nn\n") == ["import torch.nn"]
    assert violations("import torch.nn.functional as F\ny = F.conv2d(x, w)\n") == \
        ["uses F.conv2d"]
    assert violations("import torch\ny = torch.nn.functional.relu(x)\n") == \
        ["uses torch.nn.functional.relu"]
    assert violations("import torch\nwith torch.autograd.no_grad(): pass\n") == \
        ["uses torch.autograd", "uses torch.autograd.no_grad"]
    assert violations("from torch import optim\n") == ["from torch import ['optim']"]
    assert violations("from torch.nn.functional import relu\n") == \
        ["from torch.nn.functional import ['relu']"]
    assert violations("x.requires_grad = True\n") == ["uses .requires_grad"]
    assert violations("x.requires_grad_()\n") == ["uses .requires_grad_"]
    assert violations("import torch\nw = torch.zeros(2, requires_grad=True)\n") == \
        ["passes requires_grad="]
    assert violations("def requires_grad_(self, requires_grad=True):\n    return self\n") == []
    assert violations("import torch.nn.functional as F\ng = F\n") == \
        ["uses F other than as F.fold/unfold"]
    assert violations("import torch.nn.functional as F\ny = F.fold(F.unfold(x, 2), 4, 2)\n") == []


def test_core_source_is_free_of_torch_nn_autograd_and_optim():
    files = core_files()
    names = {p.relative_to(PACKAGE).as_posix() for p in files}
    assert {"module.py", "conv.py", "im2col.py", "optim/adam.py", "loss.py"} <= names
    assert not names & {"gradcheck.py", "interop.py"}
    problems = {p.relative_to(PACKAGE).as_posix(): v for p in files
                if (v := violations(p.read_text(encoding="utf-8")))}
    assert problems == {}
