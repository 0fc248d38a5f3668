"""The `impl` switch of the layers and optimizers that have two implementations: "fast" (the
instructor's fast paths, the default) or "reference" (the textbook code, all the student edition
has). Both compute the same; the tests prove it."""
from __future__ import annotations

### BEGIN FAST PATH
from collections.abc import Iterator
from contextlib import contextmanager
### END FAST PATH

IMPLS = ("fast", "reference")


def check_impl(impl: str) -> None:
    """Raise ValueError unless `impl` is one of IMPLS."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be {' or '.join(map(repr, IMPLS))}, got {impl!r}")


### BEGIN FAST PATH
# Each fast path of "fast", by name; `levers_off` switches some off to measure what they are
# worth (notebook 11). With all of them off, "fast" runs the reference code.
LEVERS = ("strided_patches", "channels_last", "winograd", "phases", "flipped_input_grad",
          "leaky_relu", "sigmoid", "foreach_adam", "flat_adam")
_off: set[str] = set()


def lever_on(name: str) -> bool:
    """Whether the fast path `name` (one of LEVERS) is on: always, except inside `levers_off`."""
    return name not in _off


@contextmanager
def levers_off(*names: str) -> Iterator[None]:
    """Switch the named fast paths off inside the block; `levers_off(*LEVERS)`: all of them."""
    unknown = sorted(set(names) - set(LEVERS))
    if unknown:
        raise ValueError(f"levers_off: no fast path {', '.join(map(repr, unknown))}; "
                         f"they are {', '.join(LEVERS)}")
    added = set(names) - _off
    _off.update(added)
    try:
        yield
    finally:
        _off.difference_update(added)
### END FAST PATH
