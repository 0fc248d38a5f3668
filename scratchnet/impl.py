"""The `impl` switch of the layers and optimizers that have two implementations: "fast" (the
instructor's fast paths, the default) or "reference" (the textbook code, all the student edition
has). Both compute the same; the tests prove it."""
from __future__ import annotations

IMPLS = ("fast", "reference")


def check_impl(impl: str) -> None:
    """Raise ValueError unless `impl` is one of IMPLS."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be {' or '.join(map(repr, IMPLS))}, got {impl!r}")
