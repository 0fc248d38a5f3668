"""The graded tests of the package tasks: `pytest -m T04` (a notebook's tasks), `-m T04_4` (one).

Self-contained (it ships alone in the hand-out). It
- registers a marker per task and per notebook from the registry, so `--strict-markers` works;
- runs every test on one thread (the tensors are tiny) with torch's autograd off, as the
  notebooks do; references turn it on locally with `torch.enable_grad()`;
- keeps the Hypothesis examples few and reproducible (profile "scratchnet-tasks"; no "explain"
  phase, which costs seconds per failing test);
- guards purity (scratchnet/coursework/guard.py, installed before the package is imported, so
  that a name the package binds at import is guarded too): while a task's test runs,
  torch.nn.functional (but fold/unfold), torch.nn modules, autograd, torch.func and torch.optim's
  steps raise when called from the student's package code — the test's own torch references
  still use them. In T04.1/T04.2 tests fold/unfold raise too;
- runs tests with an `impl` argument once with the layers' default implementation and, in the
  solution edition (which still has the fast paths), once more with impl="reference";
- reports an exception raised in the task's code as a CheckFailed that names the call (function,
  shapes, arguments), the line that raised and the task's hint (checks.reporting_crashes), the
  original exception's traceback shown above it.
"""
from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, Phase, settings


def _load_guard():
    """scratchnet/coursework/guard.py, by its path: importing it as part of the package would
    run the student's code before the guard is in place."""
    if "scratchnet_guard" in sys.modules:
        return sys.modules["scratchnet_guard"]
    path = Path(__file__).resolve().parents[2] / "scratchnet" / "coursework" / "guard.py"
    spec = importlib.util.spec_from_file_location("scratchnet_guard", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["scratchnet_guard"] = module
    spec.loader.exec_module(module)
    return module


guard = _load_guard()
guard.install()
guard.active = False

import scratchnet  # after the guard
from scratchnet.coursework.checks import reporting_crashes
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


def _task_of(item: pytest.Item) -> str | None:
    """The id of the task whose marker the test carries ("T04_4" → "T04.4")."""
    for mark in item.iter_markers():
        if mark.name.count("_") == 1 and mark.name.startswith("T"):
            return task(mark.name.replace("_", ".")).id
    return None


@pytest.fixture(autouse=True)
def _purity(request: pytest.FixtureRequest) -> Iterator[None]:
    """Forbid, for the student's code, what would do the task for them."""
    task_id = _task_of(request.node)
    guard.active, guard.task = task_id is not None, task_id
    guard.allow_fold = task_id not in FOLD_TASKS
    yield
    guard.active, guard.task, guard.allow_fold = False, None, True


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
