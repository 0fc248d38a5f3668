"""What runs inside the grader's subprocesses: a pytest plugin that records every test's outcome
and markers, and a notebook runner. The grader copies this file into each submission's temporary
folder (as `scratchnet_grade_runtime.py`) and loads it from there, so it imports nothing from
`scratchnet`: in those processes `scratchnet` is the student's package.

Both write JSON lines, one record per event, flushed as they happen, so a run that crashes or is
killed keeps what it had done.

pytest: `-p scratchnet_grade_runtime`, records to $SCRATCHNET_GRADE_RESULTS; with
$SCRATCHNET_GRADE_ROOT set, the run stops at once unless `import scratchnet` is inside it, and
`scratchnet.*` is found only on the path (`confine_package`): a module the submission lacks is
absent, not the instructor's (which an editable install would otherwise supply).
notebooks: `python scratchnet_grade_runtime.py JOB.json` (see `run_notebook`); on SIGTERM the
runner kills its kernel (while that child of its own is alive) and exits. The kernel's first cell
(`PRELUDE`) installs the guard, imports the submission's package and seals the course's modules
(`seal_course_modules`) before any of the student's cells runs.

The task tests' student side: `python scratchnet_grade_runtime.py --probes DIR` (`serve`) is the
only process that imports the student's package. It runs the probe functions of DIR (the
instructor's `tests/tasks/probes/`) on the arguments the tests send and sends back what they
return, as data: messages are `torch.save` bytes, read with `torch.load(weights_only=True)`,
which builds tensors, numbers, strings and containers and runs no code. The tests, in a process
of their own, compare the values with their references (`scratchnet.coursework.student`).
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from importlib.machinery import PathFinder
from pathlib import Path

RESULTS_ENV = "SCRATCHNET_GRADE_RESULTS"
ROOT_ENV = "SCRATCHNET_GRADE_ROOT"
WORKER_ENV = "SCRATCHNET_GRADE_WORKER"     # how the tests start the student's side (JSON)
TIMEOUT_ENV = "SCRATCHNET_GRADE_TIMEOUT"
WRONG_PACKAGE_EXIT = 4
KERNELS = 4                # a notebook's kernels: the first, and one after each death


def _write(path: str | os.PathLike | None, record: dict) -> None:
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()


def full(text: str, limit: int = 3000) -> str:
    """A message whole (its first `limit` characters), for the student's feedback."""
    text = str(text).strip()
    return text if len(text) <= limit else text[:limit] + " …"


def first_line(text: str) -> str:
    for line in str(text).strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def _inside(file: str | None, root: str) -> bool:
    if not file:
        return False
    try:
        Path(file).resolve().relative_to(Path(root).resolve())
    except ValueError:
        return False
    return True


def install_guard(active: bool = True) -> None:
    """The purity guard (scratchnet/coursework/guard.py of the folder being graded, loaded by
    its path), before the student's package is imported: in a kernel (`active`), the package's
    functions that would do a task (bound at import or not) raise when the student's package
    calls them; in the task tests' worker, while a task's code runs (`guard.checking`)."""
    import importlib.util

    root = os.environ.get(ROOT_ENV)
    if not root or "scratchnet_guard" in sys.modules:
        return
    path = Path(root) / "scratchnet" / "coursework" / "guard.py"
    spec = importlib.util.spec_from_file_location("scratchnet_guard", path)
    guard = importlib.util.module_from_spec(spec)
    sys.modules["scratchnet_guard"] = guard
    spec.loader.exec_module(guard)
    guard.install()
    guard.active = active


def check_origin(root: str | None) -> tuple[str | None, str | None]:
    """→ (scratchnet.__file__ or None, an error message or None)."""
    try:
        import scratchnet
    except BaseException as e:  # noqa: BLE001 - the student's package may not even import
        return None, f"import scratchnet failed: {type(e).__name__}: {first_line(str(e))}"
    origin = getattr(scratchnet, "__file__", None)
    if root and not _inside(origin, root):
        return origin, (f"`import scratchnet` found {origin}, not the submission's package in "
                        f"{root}")
    return origin, None


class _OnlyOnPath:
    """A meta path finder for `scratchnet` and its modules: they are what the path finder finds
    (the submission's package, first on PYTHONPATH), or nothing. Without it, a module missing
    from the submission would be found by a finder further on: an editable install of the
    instructor's package maps every `scratchnet.*` name to its checkout."""

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        if fullname != "scratchnet" and not fullname.startswith("scratchnet."):
            return None
        spec = PathFinder.find_spec(fullname, path, target)
        if spec is None:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return spec

    @staticmethod
    def invalidate_caches() -> None:
        pass


def confine_package() -> None:
    """From now on, `scratchnet.*` is only the package on the path (see `_OnlyOnPath`)."""
    if _OnlyOnPath not in sys.meta_path:
        sys.meta_path.insert(0, _OnlyOnPath)


# the course's modules in a kernel: what graded cells call to decide, so what no cell may change;
# module → the names it keeps (None: all of them)
SEALED = {"scratchnet": ("gradcheck", "GradcheckReport", "to_torch", "from_torch", "coursework"),
          "scratchnet.coursework": None, "scratchnet.coursework.checks": None,
          "scratchnet.coursework.tasks": None, "scratchnet.coursework.references": None,
          "scratchnet.gradcheck": None, "scratchnet.interop": None, "scratchnet_guard": None,
          "scratchnet_grade_runtime": None}


class _Sealed(type(sys)):
    """A module whose names (those of SEALED[its name]) cannot be assigned or deleted; but the
    import system may still add a submodule it imports."""

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, type(sys)) and value.__name__ == f"{self.__name__}.{name}" \
                or not _kept(self, name):
            return super().__setattr__(name, value)
        raise AttributeError(f"{self.__name__}.{name} is the course's and cannot be changed "
                             "while grading")

    def __delattr__(self, name: str) -> None:
        if not _kept(self, name):
            return super().__delattr__(name)
        raise AttributeError(f"{self.__name__}.{name} is the course's and cannot be deleted "
                             "while grading")


def _kept(module: object, name: str) -> bool:
    names = SEALED.get(module.__name__, ())
    return names is None or name in names


def seal_course_modules() -> None:
    """Make the course's modules (SEALED) read-only in this process: in a kernel, before any of
    the student's cells runs, so that none can change what a graded cell calls to decide."""
    import importlib

    for name in SEALED:
        module = sys.modules.get(name)
        if module is None and name.split(".")[0] == "scratchnet":
            module = importlib.import_module(name)
        if module is not None:
            module.__class__ = _Sealed


# what a graded cell computes with: the names of these modules and classes, as the kernel's first
# cell found them, are put back before each graded cell (and checked after it)
WATCHED_MODULES = ("torch", "torch.nn.functional", "torch.linalg", "torch.testing", "math",
                   "builtins", *SEALED)
WATCHED_CLASSES = (("torch", "Tensor"),)
_also: list[str] = []        # the modules a notebook's graded cells read besides (`statistics`)
_snapshot: dict[str, dict[str, object]] = {}
INTEGRITY_MARK = "SCRATCHNET_INTEGRITY="


def _watched() -> Iterator[tuple[str, object, dict]]:
    """(name, owner, its namespace) of every watched module and class now loaded."""
    import builtins
    import types

    for name in (*WATCHED_MODULES, *_also):
        module = sys.modules.get(name)
        if module is not None:
            space = vars(module)
            if module is builtins:        # its functions and types; IPython manages the rest
                space = {k: v for k, v in space.items()
                         if isinstance(v, (types.BuiltinFunctionType, type))}
            yield name, module, space
    for module, cls in WATCHED_CLASSES:
        owner = getattr(sys.modules.get(module), cls, None)
        if isinstance(owner, type):
            yield f"{module}.{cls}", owner, dict(vars(owner))


def take_snapshot(also: Iterable[str] = ()) -> None:
    """Remember the watched namespaces, and those of the modules `also` (imported now; a dotted
    name that is not a module stands for its module): in the kernel's first cell, before the
    student's."""
    import importlib

    for name in also:
        for candidate in (name, name.rpartition(".")[0]):
            try:
                importlib.import_module(candidate)
            except ImportError:
                continue
            if candidate not in _also:
                _also.append(candidate)
            break
    for name, _, space in _watched():
        _snapshot[name] = dict(space)


def _torchs_own(new: object, old: object) -> bool:
    """Whether `new` is torch's own wrapper of `old` (importing torch._dynamo wraps
    torch.manual_seed): a function of torch's files whose __wrapped__ is `old`."""
    import torch

    code = getattr(new, "__code__", None)
    return (getattr(new, "__wrapped__", None) is old and code is not None
            and _inside(code.co_filename, str(Path(torch.__file__).parent)))


def restore() -> list[str]:
    """Put back every watched name that was changed or deleted since `take_snapshot`; → their
    dotted names. A module's dictionary is written directly: a sealed module refuses setattr.
    torch's own wrapping of its functions is taken in instead."""
    changed = []
    missing = object()
    for name, owner, space in _watched():
        for key, value in _snapshot.get(name, {}).items():
            now = space.get(key, missing)
            if now is not value and _torchs_own(now, value):
                _snapshot[name][key] = now
            elif now is not value:
                changed.append(f"{name}.{key}")
                if isinstance(owner, type):
                    type.__setattr__(owner, key, value)
                else:
                    vars(owner)[key] = value
    return changed


def check_integrity(namespace: dict, imports: str) -> None:
    """Before (and after) a graded cell: put back the watched names (`restore`), bind the
    instructor's imports (`imports`, their source) again in the notebook's `namespace`, and
    print INTEGRITY_MARK and what was changed, as JSON, for the runner."""
    changed = restore()
    exec(imports, namespace)  # noqa: S102 - the instructor's import statements
    print(INTEGRITY_MARK + json.dumps(changed))


# ---------------------------------------------------------------------------------------------
# pytest plugin (loaded with -p before any conftest, so before `import scratchnet`)

if __name__ != "__main__" and os.environ.get(ROOT_ENV):
    confine_package()


def _message(report) -> str:
    if getattr(report, "wasxfail", None) is not None:       # xfailed: its reason
        return first_line(report.wasxfail.removeprefix("reason: "))
    longrepr = report.longrepr
    if longrepr is None:
        return ""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:   # skip: (file, line, reason)
        return first_line(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        message = full(crash.message).split(".GradeTimeout: ", 1)[-1]
        return message.removeprefix("scratchnet.coursework.checks.CheckFailed: ")
    return first_line(str(longrepr).strip().splitlines()[-1] if str(longrepr).strip() else "")


def pytest_sessionstart(session) -> None:
    import pytest

    if os.environ.get(WORKER_ENV):      # the student's package is in the worker: it reports it
        return
    out = os.environ.get(RESULTS_ENV)
    origin, error = check_origin(os.environ.get(ROOT_ENV))
    _write(out, {"event": "origin", "file": origin, "error": error, "executable": sys.executable})
    if error and origin is not None:       # a package from elsewhere: grade nothing
        pytest.exit(error, returncode=WRONG_PACKAGE_EXIT)


def pytest_collectreport(report) -> None:
    if report.failed or report.skipped:      # a module that did not import, or skipped itself
        _write(os.environ.get(RESULTS_ENV), {"event": "collect_error", "nodeid": report.nodeid,
                                             "outcome": report.outcome,
                                             "message": _message(report)})


def pytest_collection_finish(session) -> None:
    items = [{"nodeid": item.nodeid, "markers": sorted({m.name for m in item.iter_markers()})}
             for item in session.items]
    _write(os.environ.get(RESULTS_ENV), {"event": "collected", "items": items})


class GradeTimeout(BaseException):
    """A test ran over its time limit. Not an Exception, so that neither the student's code
    (`except Exception`) nor Hypothesis (which would replay the test) catches it."""


def _on_alarm(signum, frame) -> None:
    raise GradeTimeout(f"the test ran over {os.environ.get(TIMEOUT_ENV)} s and was stopped")


def _alarm(seconds: float) -> None:
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        if seconds > 0:
            signal.signal(signal.SIGALRM, _on_alarm)
        # after the limit, the alarm rings every second until the test is over
        signal.setitimer(signal.ITIMER_REAL, seconds, 1.0 if seconds > 0 else 0)


def pytest_runtest_logstart(nodeid, location) -> None:
    _write(os.environ.get(RESULTS_ENV), {"event": "start", "nodeid": nodeid})
    _alarm(float(os.environ.get(TIMEOUT_ENV) or 0))


def pytest_runtest_logfinish(nodeid, location) -> None:
    _alarm(0)


def pytest_runtest_logreport(report) -> None:
    _write(os.environ.get(RESULTS_ENV), {
        "event": "report", "nodeid": report.nodeid, "when": report.when,
        "outcome": report.outcome, "xfail": hasattr(report, "wasxfail"),
        "message": _message(report) if not report.passed else ""})


def pytest_sessionfinish(session, exitstatus) -> None:
    _write(os.environ.get(RESULTS_ENV), {"event": "finished", "exitstatus": int(exitstatus)})


# ---------------------------------------------------------------------------------------------
# the student's side of the task tests

MAX_MESSAGE = 256 * 2**20          # bytes: a reply larger than this is refused


def encode(value: object) -> bytes:
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def decode(data: bytes) -> object:
    """What `encode` wrote, rebuilt without running code (torch's weights-only unpickler)."""
    import io

    import torch

    return torch.load(io.BytesIO(data), weights_only=True)


_DATA = (str, int, float, bool, complex, type(None))


def not_data(value: object, depth: int = 0) -> str | None:
    """What in `value` is not data a test can read back (`decode`), e.g. 'a numpy.ndarray', or
    None when all of it is: tensors, numbers, strings, None, and lists, tuples and dicts of them."""
    import torch

    if isinstance(value, _DATA) or type(value) is torch.Tensor or isinstance(value, torch.dtype):
        return None
    if depth < 20 and isinstance(value, (list, tuple)) and type(value) in (list, tuple):
        return next((w for v in value if (w := not_data(v, depth + 1))), None)
    if depth < 20 and type(value) is dict:
        return next((w for k, v in value.items()
                     if (w := not_data(k, depth + 1) or not_data(v, depth + 1))), None)
    kind = type(value)
    name = kind.__qualname__ if kind.__module__ == "builtins" else (
        f"{kind.__module__}.{kind.__qualname__}")
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def send(stream, payload: bytes) -> None:
    stream.write(len(payload).to_bytes(8, "little") + payload)
    stream.flush()


def receive(stream) -> bytes | None:
    """The next message, or None at the end of the stream."""
    header = stream.read(8)
    if len(header) < 8:
        return None
    data = stream.read(int.from_bytes(header, "little"))
    return data if len(data) == int.from_bytes(header, "little") else None


def call_probe(task: str, module: str, function: str, args: tuple, kwargs: dict) -> dict:
    """Run probes.<module>.<function>(*args, **kwargs) as task `task`'s code: the guard refuses
    the forbidden functions, and an exception in the task's functions is described as
    `reporting_crashes` does. → {"value": what it returned} or {"error": a message}."""
    import importlib
    from contextlib import nullcontext

    from scratchnet.coursework.checks import CheckFailed, _is_stub, raised_at, reporting_crashes

    guard = sys.modules.get("scratchnet_guard")
    try:
        probe = getattr(importlib.import_module(f"probes.{module}"), function)
        with guard.checking(task) if guard is not None else nullcontext(), \
                reporting_crashes(task):
            return {"value": probe(*args, **kwargs)}
    except CheckFailed as e:
        return {"error": str(e)}
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - whatever the student's code raises, SystemExit too
        where = "" if _is_stub(e) else raised_at(e)    # a blank task's message says it all
        return {"error": f"{type(e).__name__}: {e}" + (f"\n{where}" if where else "")}


def checked(reply: dict | str) -> dict:
    """`call_probe`'s reply, or an error reply naming what in its value is not data."""
    if isinstance(reply, str):
        return {"error": reply}
    what = not_data(reply.get("value"))
    if what is None:
        return reply
    return {"error": f"the code returned {what}, which a test cannot read: return tensors, "
                     "numbers, strings, or lists, tuples and dicts of them"}


def serve(probes: str) -> None:
    """The worker: answer the requests on stdin (`call_probe`'s arguments) on the stdout it was
    given; what the student's code prints goes to stderr. Its first message says where
    `import scratchnet` came from."""
    protocol_in = os.fdopen(os.dup(0), "rb")
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    sys.path.insert(0, probes)
    confine_package()
    install_guard(active=False)
    origin, error = check_origin(os.environ.get(ROOT_ENV))
    send(protocol_out, encode({"origin": origin, "error": error, "executable": sys.executable}))
    while (request := receive(protocol_in)) is not None:
        request = decode(request)
        send(protocol_out, encode(checked(error) if error else call_probe(**request)))


# ---------------------------------------------------------------------------------------------
# notebook runner

PRELUDE = """\
import sys as _sys_graded
print("SCRATCHNET_EXECUTABLE=" + _sys_graded.executable)
import scratchnet_grade_runtime as _runtime_graded
_runtime_graded.confine_package()
_runtime_graded.install_guard()
import scratchnet as _scratchnet_graded
print("SCRATCHNET_ORIGIN=" + str(_scratchnet_graded.__file__))
_runtime_graded.seal_course_modules()
_runtime_graded.take_snapshot({watch!r})
del _scratchnet_graded, _sys_graded, _runtime_graded
"""
INTEGRITY = """\
import scratchnet_grade_runtime as _runtime_graded
_runtime_graded.check_integrity(globals(), {imports!r})
del _runtime_graded
"""


def _error_of(cell, reply: dict | None) -> str | None:
    """The first line of the cell's error, or None when it ran without one."""
    if reply is not None and reply.get("content", {}).get("ename") == "CellTimeout":
        return reply["content"]["evalue"]
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return full(f"{output.get('ename', 'Error')}: {output.get('evalue', '')}")
    if reply is not None and reply.get("content", {}).get("status") == "error":
        content = reply["content"]
        return full(f"{content.get('ename', 'Error')}: {content.get('evalue', '')}")
    return None


def _printed(cell) -> str:
    """What a cell printed (its stream outputs)."""
    return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")


def _prelude_value(text: str, key: str) -> str | None:
    values = [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "=")]
    return values[-1] if values else None


def run_notebook(job: dict) -> None:
    """Execute job["notebook"] in a fresh kernel (kernelspec job["kernel"]; cwd: its folder,
    environment: job["env"]) and record, for every code cell whose grade_id is in job["graded"],
    whether it ran without an error. A first cell checks where `import scratchnet` comes from
    (it must be inside job["root"]). Cells get job["cell_timeout"] seconds each; after
    job["budget"] seconds in all the remaining cells are not run. The last record, however the
    run ends (but for a kill), is "finished", written once the kernel is shut down."""
    out = job["results"]
    error = None
    try:
        _run_notebook(job, out)
    except BaseException as e:
        error = f"{type(e).__name__}: {first_line(str(e))}"
        raise
    finally:
        _write(out, {"event": "finished", "error": error})


def _run_notebook(job: dict, out: str) -> None:
    import asyncio

    # jsonschema, which nbformat imports, builds the grammar of its optional IRI format check at
    # import: most of a second of CPU per notebook, for a format no notebook's schema uses
    sys.modules.setdefault("rfc3987_syntax", None)
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    path = Path(job["notebook"])
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as e:  # noqa: BLE001 - whatever nbformat makes of a broken notebook
        _write(out, {"event": "unreadable", "error": f"{type(e).__name__}: {first_line(str(e))}"})
        return
    graded = set(job["graded"])
    prelude = nbformat.v4.new_code_cell(PRELUDE.format(watch=job.get("watch", [])))
    nb.cells.insert(0, prelude)
    deadline = time.monotonic() + float(job["budget"])
    cell_timeout = float(job["cell_timeout"])
    replies: dict[int, dict] = {}

    def on_cell_executed(cell, cell_index, execute_reply):
        replies[cell_index] = execute_reply

    from jupyter_client.manager import AsyncKernelManager

    # the kernel may run in a sandbox without a network: its sockets are files in job["ipc"]
    def kernel_manager(n: int) -> AsyncKernelManager:
        return AsyncKernelManager(kernel_name=job["kernel"], transport="ipc",
                                  ip=str(Path(job["ipc"]) / f"k{n}"),
                                  connection_file=str(Path(job["ipc"]) / f"k{n}.json"))

    client = NotebookClient(
        nb, km=kernel_manager(0), timeout=int(max(1, cell_timeout)), kernel_name=job["kernel"],
        allow_errors=True, interrupt_on_timeout=True, record_timing=False,
        error_on_timeout={"ename": "CellTimeout",
                          "evalue": f"the cell ran over {cell_timeout:g} s and was interrupted",
                          "traceback": []},
        on_cell_executed=on_cell_executed, resources={"metadata": {"path": str(path.parent)}})

    def stop(signum, frame):
        """SIGTERM (the grader's stop): kill the kernel, a child of this process in a session
        of its own, while it is alive (its pid is ours until we reap it), then exit."""
        proc = getattr(getattr(getattr(client, "km", None), "provisioner", None), "process", None)
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)

    recorded: set[str] = set()        # graded cells with a record, in any kernel
    killers: set[int] = set()         # cells whose run killed a kernel: not run again

    async def integrity(index: int) -> tuple[list[str] | None, str]:
        """Run `check_integrity` in the kernel (as cell `index`) → (the names it put back, ''),
        or (None, why it could not tell)."""
        check = nbformat.v4.new_code_cell(INTEGRITY.format(imports=job.get("imports", "")))
        await client.async_execute_cell(check, index,
                                        execution_count=client.code_cells_executed + 1)
        error = _error_of(check, replies.get(index))
        value = _prelude_value(_printed(check), INTEGRITY_MARK[:-1])
        try:
            names = json.loads(value) if value is not None and not error else None
        except ValueError:
            names = None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return None, first_line(error or "it printed nothing")
        return names, ""

    async def one_kernel(n: int) -> int | None:
        """Run the notebook's cells in a fresh kernel (the n-th), but those that killed one,
        recording each graded cell once; → the index of the cell it died in, or None."""
        first = n == 0
        if not first:
            client.km, client.kc = kernel_manager(n), None
        async with client.async_setup_kernel(env=job["env"]):
            # nbclient's own SIGTERM handler (a graceful shutdown, after which this runner would
            # go on) is replaced by `stop`, run by the event loop as soon as the signal comes
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop, signal.SIGTERM,
                                                          None)
            _write(out, {"event": "started" if first else "restarted"})
            earlier = None      # the last error since the last graded cell, which may explain it
            for index, cell in enumerate(nb.cells):
                grade_id = (cell.get("metadata", {}).get("nbgrader", {}) or {}).get("grade_id")
                if time.monotonic() > deadline:
                    _write(out, {"event": "budget", "index": index})
                    return None
                skip = (cell.get("metadata", {}).get("scratchnet", {}) or {}).get("grading")
                if cell.get("cell_type") != "code" or index in killers or skip == "skip":
                    continue
                left = deadline - time.monotonic()
                client.timeout = int(max(1, min(cell_timeout, left + 1)))
                cell.outputs = []
                checked = index > 0 and grade_id in graded and grade_id not in recorded
                try:
                    before = await integrity(index) if checked else ([], "")
                    await client.async_execute_cell(cell, index,
                                                    execution_count=client.code_cells_executed + 1)
                    error = _error_of(cell, replies.get(index))
                    after = await integrity(index) if checked else ([], "")
                except DeadKernelError:
                    _write(out, {"event": "dead", "index": index, "grade_id": grade_id})
                    if grade_id in graded and grade_id not in recorded:
                        recorded.add(grade_id)
                        _write(out, {"event": "cell", "grade_id": grade_id, "stderr": False,
                                     "error": "the kernel died while this cell ran"})
                    return index
                if index == 0:
                    text = _printed(cell)
                    file = _prelude_value(text, "SCRATCHNET_ORIGIN")
                    record = {"event": "origin", "file": file, "error": error,
                              "executable": _prelude_value(text, "SCRATCHNET_EXECUTABLE")}
                    if file is not None and not _inside(file, job["root"]):
                        record["error"] = (f"`import scratchnet` found {file}, not the "
                                           f"submission's package in {job['root']}")
                        _write(out, record)
                        return None      # a package from elsewhere: grade nothing
                    if first:
                        _write(out, record)
                elif grade_id in graded and grade_id not in recorded:
                    recorded.add(grade_id)
                    stderr = any(o.get("output_type") == "stream" and o.get("name") == "stderr"
                                 for o in cell.outputs)
                    if error and error.startswith("NotImplementedError") and not \
                            first_line(error).removeprefix("NotImplementedError").strip(": "):
                        error = ("NotImplementedError: code of yours that this cell runs is "
                                 "still blank (it raises NotImplementedError)")
                    elif error and earlier:
                        error = f"{error}\n(an earlier cell failed: {earlier})"
                    for when, (names, why) in (("before", before), ("after", after)):
                        if names is None:
                            error = f"the grader could not check the kernel {when} this cell: {why}"
                        elif names:
                            _write(out, {"event": "tampered", "grade_id": grade_id,
                                         "when": when, "names": names})
                            if when == "after":
                                error = (f"while this cell ran, {', '.join(names[:4])} "
                                         f"{'was' if len(names) == 1 else 'were'} changed")
                    _write(out, {"event": "cell", "grade_id": grade_id, "error": error,
                                 "stderr": stderr})
                    earlier = None
                elif error:
                    start = first_line("".join(cell.get("source", "")))
                    where = (f"your cell {grade_id}" if grade_id
                             else f"the cell that starts {start[:60]!r}")
                    earlier = f"{where}: {first_line(error)}"
        return None

    async def main() -> None:
        """A kernel that dies is replaced (up to KERNELS in all): the new one runs the notebook
        again without the cell that killed the last, and grading goes on at the next graded
        cell not yet recorded."""
        client.reset_execution_trackers()
        for attempt in range(KERNELS):
            died_in = await one_kernel(attempt)
            if died_in is None or died_in == 0:
                return
            killers.add(died_in)

    asyncio.run(main())


if __name__ == "__main__":
    if sys.argv[1] == "--probes":
        serve(sys.argv[2])
    else:
        run_notebook(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")))
