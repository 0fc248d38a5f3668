"""`show_source`: display the package's own code in a notebook, so a lesson never keeps a copy of it.

    from scratchnet.show import show_source
    show_source(sn.Conv2d.backward)      # highlighted in Jupyter, printed elsewhere
"""
from __future__ import annotations

import inspect
import re
import textwrap
from typing import Any


def qualified_name(obj: Any) -> str:
    """`sn.Conv2d.backward` → 'scratchnet.conv.Conv2d.backward'; a module → its dotted name."""
    if inspect.ismodule(obj):
        return obj.__name__
    module = inspect.getmodule(obj)
    name = getattr(obj, "__qualname__", getattr(obj, "__name__", type(obj).__name__))
    return f"{module.__name__}.{name}" if module is not None else name


def source_markdown(obj: Any) -> str:
    """Markdown for a class, function, method or property: its qualified name, then its source
    as a fenced Python block (the fence is longer than any run of backticks in the code). The
    code is what the student edition holds: FAST PATH regions left out, the other region marker
    lines dropped (`coursework.regions.reference_source`)."""
    from .coursework.regions import reference_source

    if isinstance(obj, property):
        obj = obj.fget
    try:
        source = inspect.getsource(obj)
    except (TypeError, OSError) as error:
        raise TypeError(f"show_source: no Python source for {obj!r} ({error})") from None
    code = textwrap.dedent(reference_source(source, qualified_name(obj))).rstrip()
    longest = max((len(run) for run in re.findall("`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"`{qualified_name(obj)}`\n\n{fence}python\n{code}\n{fence}"


def show_source(obj: Any) -> None:
    """Display the source of `obj` as highlighted code in Jupyter; print it outside IPython."""
    show_markdown(source_markdown(obj))


def show_markdown(text: str) -> None:
    """Display Markdown `text` rendered in Jupyter; print it outside IPython."""
    from IPython import get_ipython
    from IPython.display import Markdown, display

    if get_ipython() is None:
        print(text)
    else:
        display(Markdown(text))
