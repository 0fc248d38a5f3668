"""`no_grad`: run modules without keeping what their backward pass needs."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

_enabled = True


def is_grad_enabled() -> bool:
    """True unless inside `scratchnet.no_grad()`."""
    return _enabled


@contextmanager
def no_grad() -> Iterator[None]:
    """Inference: modules cache nothing for backward, so activations are freed as soon as possible.

    The scratchnet counterpart of `torch.no_grad()`; calling `backward` on a module whose last
    forward ran inside this context raises a RuntimeError.
    """
    global _enabled
    previous, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = previous
