"""The graded tests of the package tasks: `pytest -m T04` (a notebook's tasks), `-m T04_4` (one).

Self-contained (it ships alone in the hand-out). The tests never touch the student's objects:
they call probe functions (`probes/`, named after the test module: test_t04_convolution.py →
probes/t04_convolution.py) through the `student` fixture — `student.conv_forward(case)` — which
run the student's code and return plain data, and they compare that data with torch's results
here. Run by the grader, the probes run in a sandboxed process of their own and nothing the
student's code does can reach a verdict (scratchnet/coursework/student.py); run here by a
student, they run in this process. Either way:
- a marker per task and per notebook comes from the registry, so `--strict-markers` works;
- every test runs on one thread (the tensors are tiny) with torch's autograd off, as the
  notebooks do; references turn it on locally with `torch.enable_grad()`;
- the Hypothesis examples are few and reproducible (profile "scratchnet-tasks"; no "explain"
  phase, which costs seconds per failing test);
- while a probe runs the task's code, the purity guard (scratchnet/coursework/guard.py,
  installed before the package is imported, so that a name the package binds at import is
  guarded too) refuses torch.nn.functional (but fold/unfold, refused too in T04.1/T04.2), torch.nn
  modules, autograd, torch.func and torch.optim's steps to the student's package code;
- an exception raised in the task's code fails the test with a message that names the call
  (function, shapes, arguments), the line that raised and the task's hint;
- tests with an `impl` argument run once with the layers' default implementation and, in the
  solution edition (which still has the fast paths), once more with impl="reference".
"""
from __future__ import annotations

import importlib.util
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, Phase, settings

WORKER = bool(os.environ.get("SCRATCHNET_GRADE_WORKER"))    # the grader's: probes run elsewhere


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


if not WORKER:
    guard = _load_guard()
    guard.install()
    guard.active = False

import scratchnet  # after the guard
from scratchnet.coursework.student import Probes, Student
from scratchnet.coursework.tasks import TASKS, task

PROFILE = "scratchnet-tasks"
settings.register_profile(
    PROFILE, max_examples=10, deadline=None, derandomize=True, database=None,
    print_blob=False, report_multiple_bugs=False,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture])

PACKAGE = Path(scratchnet.__file__).resolve().parent
SOLUTION_EDITION = not WORKER and any(
    "### BEGIN SOLUTION" in path.read_text(encoding="utf-8")
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


@pytest.fixture(scope="session")
def _student_code() -> Iterator[Student]:
    code = Student.from_environment()
    if WORKER:      # the grader stops a run with SIGTERM: the worker, in a session of its own, too
        signal.signal(signal.SIGTERM, lambda signum, frame: (code.close(), os._exit(143)))
    yield code
    code.close()


@pytest.fixture
def student(request: pytest.FixtureRequest, _student_code: Student) -> Probes:
    task_id = _task_of(request.node)
    if task_id is None:
        raise pytest.UsageError(f"{request.node.nodeid} uses `student` but has no task marker")
    return Probes(_student_code, task_id, request.module.__name__.removeprefix("test_"))
