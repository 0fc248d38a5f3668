"""`progress_bar`: one tqdm bar per loop, in a terminal or a notebook.

In a Jupyter kernel the bar is tqdm's text bar written into one output that is updated in place
(a display handle), not a widget: the saved notebook, nbval and the static site then show its
final state ("100%| 32/32 …"), where a widget's saved text would stay at "0%".
"""
from __future__ import annotations

import sys
from typing import Any


class _DisplayLine:
    """A file-like object for tqdm: each line it is given replaces one notebook output."""

    def __init__(self) -> None:
        from IPython.display import display

        self.handle = display({"text/plain": ""}, raw=True, display_id=True)

    def write(self, text: str) -> None:
        line = text.replace("\r", "\n").strip("\n").rsplit("\n", 1)[-1]
        if line.strip():
            self.handle.update({"text/plain": line}, raw=True)

    def flush(self) -> None:
        pass


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def progress_bar(total: int, desc: str, enabled: bool = True, unit: str = "it") -> Any:
    """A tqdm bar of `total` steps; a silent one when not enabled."""
    from tqdm import tqdm

    if enabled and _in_notebook():
        return tqdm(total=total, desc=desc, unit=unit, file=_DisplayLine(), ncols=100,
                    mininterval=0.5, ascii=False)
    return tqdm(total=total, desc=desc, disable=not enabled, unit=unit, dynamic_ncols=True)
