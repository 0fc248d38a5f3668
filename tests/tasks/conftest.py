"""The graded tests of the package tasks: `pytest -m T04` (a notebook's tasks), `-m T04_4` (one).

Self-contained (it ships alone in the hand-out). It
- registers a marker per task and per notebook from the registry, so `--strict-markers` works;
- runs every test on one thread (the tensors are tiny) with torch's autograd off, as the
  notebooks do; references turn it on locally with `torch.enable_grad()`;
- keeps the Hypothesis examples few and reproducible (profile "scratchnet-tasks"; no "explain"
  phase, which costs seconds per failing test);
- guards purity: while a test runs, torch.nn.functional (but fold/unfold), torch.autograd's
  backward/grad and torch.optim's steps raise when called from the student's package code —
  the test's own torch references still use them. In T04.1/T04.2 tests fold/unfold raise too;
- runs tests with an `impl` argument once with the layers' default implementation and, in the
  solution edition (which still has the fast paths), once more with impl="reference";
- reports an exception raised in the task's code as a CheckFailed that names the call (function,
  shapes, arguments), the line that raised and the task's hint (checks.reporting_crashes), the
  original exception's traceback shown above it.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, Phase, settings

import scratchnet
from scratchnet.coursework.checks import CheckFailed, is_student_file, reporting_crashes
from scratchnet.coursework.tasks import TASKS, task

PROFILE = "scratchnet-tasks"
settings.register_profile(
    PROFILE, max_examples=10, deadline=None, derandomize=True, database=None,
    print_blob=False, report_multiple_bugs=False,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture])

PACKAGE = Path(scratchnet.__file__).resolve().parent
FOLD_TASKS = {"T04.1", "T04.2"}
SOLUTION_EDITION = any("### BEGIN SOLUTION" in path.read_text(encoding="utf-8")
                       for path in PACKAGE.rglob("*.py") if "coursework" not in path.parts)


def pytest_configure(config: pytest.Config) -> None:
    for number in sorted({t.number for t in TASKS}):
        config.addinivalue_line("markers", f"T{number}: the package tasks of notebook {number}")
    for t in TASKS:
        config.addinivalue_line("markers", f"{t.grade_id}: {t.id} {t.title}")


@contextmanager
def _profile(name: str) -> Iterator[None]:
    previous = getattr(settings, "_current_profile", None) or "default"
    settings.load_profile(name)
    try:
        yield
    finally:
        settings.load_profile(previous)


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    """Import the test modules of this folder under the small profile (a @given test takes its
    settings when decorated) without changing the profile of any other test."""
    if not isinstance(collector, pytest.Module):
        return (yield)
    with _profile(PROFILE):
        return (yield)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`impl`: None (the default implementation) and, in the solution edition, "reference"."""
    if "impl" in metafunc.fixturenames:
        impls = [None, "reference"] if SOLUTION_EDITION else [None]
        metafunc.parametrize("impl", impls, ids=lambda i: "default" if i is None else f"impl={i}")


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """The tensors are tiny: one thread is fastest, and immune to busy machines."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _no_autograd() -> Iterator[None]:
    previous = torch.is_grad_enabled()
    torch.set_grad_enabled(False)
    yield
    torch.set_grad_enabled(previous)


def _called_from_student_code() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if is_student_file(frame.f_code.co_filename):
            return True
        frame = frame.f_back
    return False


def _guarded(original: Callable, name: str, task_id: str) -> Callable:
    def guarded(*args, **kwargs):
        if _called_from_student_code():
            raise CheckFailed(f"{task_id} must use plain tensor operations ({name} is not "
                              f"allowed)")
        return original(*args, **kwargs)
    return guarded


def _functionals() -> list[str]:
    """The public callables of torch.nn.functional (not its typing names and classes)."""
    return [name for name in dir(F) if not name.startswith("_")
            and callable(getattr(F, name)) and not isinstance(getattr(F, name), type)
            and getattr(getattr(F, name), "__module__", None) in
            ("torch.nn.functional", "torch", "torch._C._nn")]


def _optimizer_classes() -> list[type]:
    classes, todo = [], [torch.optim.Optimizer]
    while todo:
        cls = todo.pop()
        classes.append(cls)
        todo.extend(cls.__subclasses__())
    return [cls for cls in classes if "step" in vars(cls)]


FUNCTIONALS = _functionals()
OPTIMIZERS = _optimizer_classes()


def _task_of(item: pytest.Item) -> str | None:
    """The id of the task whose marker the test carries ("T04_4" → "T04.4")."""
    for mark in item.iter_markers():
        if mark.name.count("_") == 1 and mark.name.startswith("T"):
            return task(mark.name.replace("_", ".")).id
    return None


@pytest.fixture(autouse=True)
def _purity(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Forbid, for the student's code, what would do the task for them."""
    task_id = _task_of(request.node)
    if task_id is None:
        return
    allowed = set() if task_id in FOLD_TASKS else {"fold", "unfold"}
    for name in FUNCTIONALS:
        if name in allowed:
            continue
        original = getattr(F, name)
        monkeypatch.setattr(F, name, _guarded(original, f"torch.nn.functional.{name}", task_id))
        if getattr(torch, name, None) is original:                # torch.conv2d is F.conv2d
            monkeypatch.setattr(torch, name, _guarded(original, f"torch.{name}", task_id))
    for name in ("backward", "grad"):
        monkeypatch.setattr(torch.autograd, name, _guarded(
            getattr(torch.autograd, name), f"torch.autograd.{name}", task_id))
    for cls in OPTIMIZERS:
        monkeypatch.setattr(cls, "step", _guarded(
            cls.step, f"torch.optim.{cls.__name__}.step", task_id))


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    """Run a task's test under `reporting_crashes`: an exception in the student's code names its
    case and the task's hint."""
    __tracebackhide__ = True
    task_id = _task_of(pyfuncitem)
    if task_id is None:
        return (yield)
    with reporting_crashes(task_id):
        return (yield)
