"""The runtime half of the grader's purity rule: every function that would do a task for the
student — torch.nn.functional's (fold and unfold while `allow_fold` is off), the names of the
torch namespace that are the same objects (`torch.conv2d`), torch.nn.init's, torch.nn modules'
calls, autograd
(`torch.autograd.backward`/`grad` and their functional forms, `Tensor.backward`,
`Tensor.requires_grad_`), torch.func and the optimizers' steps — is replaced, under every name
that refers to it, by a wrapper that raises `ForbiddenAPI` when the student's code is on the call
stack. Installed before the student's package is imported, it also catches what the package
bound at import (`from torch.nn.functional import conv2d` binds the wrapper).

It imports nothing of `scratchnet` (importing the package runs the student's code), so the task
tests' conftest and the grader's notebook kernels load it by its path, as `scratchnet_guard`, and
call `install()`. The student's code: the package's files but coursework/, gradcheck.py and
interop.py (`is_student_file`, which `checks` uses too).
"""
from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

PACKAGE = Path(__file__).resolve().parents[1]
NOT_STUDENT_CODE = ("coursework", "gradcheck.py", "interop.py")
FOLD_TASKS = frozenset({"T04.1", "T04.2"})    # the tasks that write fold and unfold

active = True              # the task tests switch it on for each task's tests only
allow_fold = True          # off in the tests of the tasks that write fold and unfold
task: str | None = None    # the task whose tests run, for the message
hits: list[str] = []       # what was refused, in order
_installed = False


class ForbiddenAPI(RuntimeError):
    """The student's code called a function that would do the task for it."""


@contextmanager
def checking(task_id: str) -> Iterator[None]:
    """Refuse the forbidden functions to the student's code while task `task_id`'s code runs
    (fold and unfold too in FOLD_TASKS)."""
    global active, task, allow_fold
    active, task, allow_fold = True, task_id, task_id not in FOLD_TASKS
    try:
        yield
    finally:
        active, task, allow_fold = False, None, True


@functools.cache
def is_student_file(filename: str) -> bool:
    """Whether `filename` is the student's package code: scratchnet's files but coursework/,
    gradcheck.py and interop.py."""
    try:
        parts = Path(filename).resolve().relative_to(PACKAGE).parts
    except (ValueError, OSError):
        return False
    return not parts or parts[0] not in NOT_STUDENT_CODE


def _from_student() -> bool:
    """Whether the student's code is on the call stack — or may be: code that runs in a thread
    of its own (the student's code handing torch's work to a pool) is taken for the student's."""
    if threading.current_thread() is not threading.main_thread():
        return True
    frame = sys._getframe(2)
    while frame is not None:
        if is_student_file(frame.f_code.co_filename):
            return True
        frame = frame.f_back
    return False


def _guarded(original: Callable, label: str, fold: bool = False) -> Callable:
    def guarded(*args, **kwargs):
        if active and (not fold or not allow_fold) and _from_student():
            hits.append(label)
            raise ForbiddenAPI(f"{task + ' ' if task else ''}must use plain tensor operations "
                               f"({label} is not allowed)")
        return original(*args, **kwargs)

    try:
        functools.update_wrapper(guarded, original)
    except (AttributeError, TypeError):
        pass
    guarded.__scratchnet_guarded__ = True
    return guarded


def _public_callables(module: object) -> dict[str, Callable]:
    out = {}
    for name in dir(module):
        if name.startswith("__"):
            continue
        value = getattr(module, name, None)
        if callable(value) and not isinstance(value, type):
            out[name] = value
    return out


def install() -> None:
    """Replace every forbidden function, under each name of torch's namespaces that refers to
    it. Idempotent."""
    global _installed
    if _installed:
        return
    import torch
    import torch.autograd
    import torch.autograd.functional
    import torch.func
    import torch.nn.functional as F
    import torch.nn.init
    import torch.optim

    targets: dict[int, tuple[Callable, str, bool]] = {}     # id → (original, label, fold)
    for name, value in _public_callables(F).items():
        if getattr(value, "__module__", "") in ("typing", "collections.abc"):
            continue
        targets.setdefault(id(value), (value, f"torch.nn.functional.{name}",
                                       name in ("fold", "unfold")))
    for module, prefix in ((torch.autograd, "torch.autograd"),
                           (torch.autograd.functional, "torch.autograd.functional"),
                           (torch.func, "torch.func"), (torch.nn.init, "torch.nn.init")):
        for name in (n for n in dir(module) if not n.startswith("_")):
            value = getattr(module, name)
            if callable(value) and not isinstance(value, type) \
                    and not isinstance(value, ModuleType):
                targets.setdefault(id(value), (value, f"{prefix}.{name}", False))
    namespaces = [torch, F, torch.autograd, torch.autograd.functional, torch.func, torch.nn.init,
                  torch._C._nn, torch._C._VariableFunctions]
    wrappers: dict[int, Callable] = {}     # one wrapper per function: torch.conv2d stays F.conv2d
    for space in namespaces:
        for name in dir(space):
            if name.startswith("__"):
                continue
            value = getattr(space, name, None)
            hit = targets.get(id(value))
            if hit is not None and hit[0] is value and not (space is torch and name in _KEEP):
                wrapper = wrappers.setdefault(id(value), _guarded(*hit))
                try:
                    setattr(space, name, wrapper)
                except (AttributeError, TypeError):
                    pass
    for cls, name in ((torch.Tensor, "backward"), (torch.Tensor, "requires_grad_"),
                      (torch.nn.Module, "__call__")):
        setattr(cls, name, _guarded(getattr(cls, name), f"{cls.__module__}.{cls.__name__}."
                                    f"{name}".replace("torch._tensor.", "torch.")))
    todo = [torch.optim.Optimizer]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if "step" in vars(cls):
            cls.step = _guarded(cls.step, f"torch.optim.{cls.__name__}.step")
    _installed = True


# torch's own names that tensor code calls through other paths and a task never needs refused
_KEEP = frozenset({"is_grad_enabled", "no_grad", "inference_mode", "set_grad_enabled",
                   "enable_grad"})
