"""Notebook 03: xavier_uniform_ (T03.1) and kaiming_normal_ (T03.2), called by name
("xavier_uniform_", "kaiming_normal_") with the keyword arguments a test sends."""
from __future__ import annotations

import warnings

import torch
from torch import Tensor

from scratchnet import init


def fill(name: str, tensor: Tensor, seed: int, kwargs: dict) -> dict:
    """init.<name>(tensor, generator=…, **kwargs) with a generator seeded with `seed` → tensor
    afterwards, whether the call returned tensor itself, and the generator's state after it."""
    generator = torch.Generator().manual_seed(seed)
    returned = getattr(init, name)(tensor, generator=generator, **kwargs)
    return {"tensor": tensor, "returned_tensor": returned is tensor,
            "state": generator.get_state()}


def fill_global(name: str, tensor: Tensor, seed: int, kwargs: dict) -> Tensor:
    """torch.manual_seed(seed), then init.<name>(tensor, **kwargs) (torch's global generator)
    → what it returned."""
    torch.manual_seed(seed)
    return getattr(init, name)(tensor, **kwargs)


def value_error(name: str, tensor: Tensor, kwargs: dict) -> dict | None:
    """init.<name>(tensor, **kwargs) → the ValueError it raised ({"raised": its class's name,
    "message": …}), or None when it returned; any other exception propagates."""
    try:
        getattr(init, name)(tensor, **kwargs)
    except ValueError as e:
        return {"raised": type(e).__name__, "message": str(e)}
    return None


def fill_empty(name: str, tensor: Tensor) -> dict:
    """init.<name>(tensor) of a tensor with a zero-size dimension → {"raised": the
    ZeroDivisionError it raised ({"raised": …, "message": …})} or, when it returned,
    {"raised": None, "returned_tensor": whether it returned tensor itself, "warnings": the
    messages of the warnings it gave}; any other exception propagates."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            returned = getattr(init, name)(tensor)
        except ZeroDivisionError as e:
            return {"raised": {"raised": type(e).__name__, "message": str(e)}}
    return {"raised": None, "returned_tensor": returned is tensor,
            "warnings": [str(c.message) for c in caught]}
