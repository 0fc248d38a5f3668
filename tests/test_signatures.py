"""Every public scratchnet layer and loss with a torch.nn counterpart has its constructor's
signature: the same parameter names, kinds (positional or keyword-only) and defaults, so that a
torch script ports by changing its imports. Known differences are strict xfails: the test turns
red when one is fixed without removing its mark."""
from __future__ import annotations

import inspect

import pytest
from torch import nn

import scratchnet as sn

COUNTERPARTS = {
    "Conv2d": nn.Conv2d, "ConvTranspose2d": nn.ConvTranspose2d, "Flatten": nn.Flatten,
    "Identity": nn.Identity, "LeakyReLU": nn.LeakyReLU, "Linear": nn.Linear, "MSELoss": nn.MSELoss,
    "MaxPool2d": nn.MaxPool2d, "MaxUnpool2d": nn.MaxUnpool2d,
    "NearestUpsampling": nn.UpsamplingNearest2d, "ReLU": nn.ReLU, "Sequential": nn.Sequential,
    "Sigmoid": nn.Sigmoid, "Tanh": nn.Tanh,
}
NO_COUNTERPART = {"Module", "Upsampling", "Residual", "Concat"}   # torch.nn has no such layer
ALIASES = {"MSE": "MSELoss", "TransposeConv2d": "ConvTranspose2d"}
KNOWN: dict[str, str] = {}
VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def parameters(cls: type) -> list[tuple[str, inspect._ParameterKind, object]]:
    """(name, kind, default) of cls's constructor after self; a *args/**kwargs parameter by kind
    alone (its name cannot be passed). torch.nn.Module's own constructor, which refuses any
    argument, counts as taking none (nn.Sigmoid, nn.Tanh)."""
    if cls.__init__ is nn.Module.__init__:
        return []
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return [("*" if p.kind in VARIADIC else p.name, p.kind, p.default) for p in params]


def _case(name: str):
    marks = [pytest.mark.xfail(strict=True, reason=KNOWN[name])] if name in KNOWN else []
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", [_case(name) for name in COUNTERPARTS])
def test_constructor_signature_matches_torch(name):
    assert parameters(getattr(sn, name)) == parameters(COUNTERPARTS[name])


def test_every_exported_layer_is_classified():
    """A new public layer or loss must get a torch counterpart here (or be declared without
    one), so that its signature is checked."""
    layers = {name for name in sn.__all__
              if isinstance(getattr(sn, name), type) and issubclass(getattr(sn, name), sn.Module)}
    assert layers == set(COUNTERPARTS) | NO_COUNTERPART | set(ALIASES)
    assert all(getattr(sn, alias) is getattr(sn, name) for alias, name in ALIASES.items())
    assert not NO_COUNTERPART & {name for name in dir(nn) if name != "Module"}
