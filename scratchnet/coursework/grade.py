"""The autograder: points per task for students' copies of the hand-out.

    from scratchnet.coursework.grade import grade, format_table, write_csv
    results = grade(["subs/alice", "subs/bob"])          # one SubmissionResult each
    print(format_table(results))
    write_csv(results, "grades.csv")

(or `python -m scratchnet grade subs/* --csv grades.csv`).

What is graded comes from the instructor's checkout (the source tree this package runs from):
the tests in `tests/tasks/` and the solution edition's notebooks, whose graded and locked cells
(hidden tests included) replace the submission's. Before anything runs the grader checks that
this material grades every task asked for (each notebook is there, each check or exercise task
has graded cells, each code task has tests marked with its marker) and raises an error if not.

What comes from a submission: its `scratchnet/` files that hold task regions (the registry's
`where`), the `.py` files it added whose module names clash with nothing of the package, and its
`notebooks/*.ipynb`; the rest of the package (`scratchnet/coursework/`, `gradcheck.py`, …) is
the student edition's, so an edited check or test helper changes nothing. Symbolic links, added
files that would shadow a module of the package (`scratchnet/gradcheck/__init__.py`) and added
files that are not `.py` (compiled modules, data) are not used: the submission's errors list
them, and a task file or notebook among them counts as absent.

Each submission is graded in a fresh temporary folder, by subprocesses whose `import scratchnet`
is the submission's (PYTHONPATH = that folder; checked in each process) and whose Python is the
grader's (the notebooks' kernel too), in the sandbox (`sandbox.py`):
- the code tasks: pytest on the instructor's `tests/tasks/`, in a process of the grader's that
  never imports the submission's package. Each test sends its case to a worker in the sandbox
  (`grade_runtime.serve`), which runs the submission's code on it and sends the values back as
  data (`student.py`); the test compares them with its reference. A code task scores points ×
  passed / collected of the tests marked with its marker (e.g. `T04_4`); a skipped or xfailed
  test counts as failed. A worker that crashes or hangs fails the call in progress and is
  started again for the next; a test run that outlasts its time limit loses the test in
  progress, and the tests not yet run are run again, task by task.
- each notebook with graded cells, in its own kernel (cwd: the notebooks folder): a graded cell
  earns its points when it runs without an error; a check or exercise task scores its points ×
  the share of its cells' points earned. Graded cells missing from the submission earn nothing.
Written tasks are graded by hand ("manual"): not in the total. A task that loses points always
says why (`--verbose`).

Time limits (`timeout`, default 30 s): one test `timeout`; one notebook cell `4 × timeout`;
one notebook `20 × timeout`; a pytest run `20 × timeout` (each rerun of one task's tests
`5 × timeout + 30`).
"""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from copy import deepcopy
from dataclasses import dataclass, field
from functools import partial
from importlib.machinery import all_suffixes
from pathlib import Path

from ..files import atomic_write
from . import grade_runtime
from .feedback import columns, csv_row, grouped, table_text
from .handout import cell_task, default_source, instructor_only, write_handout
from .regions import SOLUTION, MarkerError, find_regions, without_fast_paths
from .sandbox import Sandbox
from .scan import Cell, Finding, cell_python, import_paths, scan_cells, scan_source, torch_aliases
from .tasks import NOTEBOOKS, TASKS, Task

RUNTIME_MODULE = "scratchnet_grade_runtime"
KERNEL_NAME = "scratchnet-grade"      # the kernelspec the grader writes: its own Python
# a notebook that reads the course data gets the instructor's (built once, before grading)
_NEEDS_DATA = re.compile(r"\b(ensure_data|load_pairs|default_data_dir|PairLoader)\b")
DEFAULT_TIMEOUT = 30.0
DEFAULT_JOBS = 2
# the pytest plugins the task tests use (entry-point names); the others installed are not
# loaded: 2 s faster, and none of them can change how the tests run
PYTEST_PLUGINS = ("timeout", "hypothesispytest")


def _plugin_args() -> list[str]:
    from importlib.metadata import entry_points

    return [arg for ep in entry_points(group="pytest11") if ep.name in PYTEST_PLUGINS
            for arg in ("-p", ep.value)]


class InstructorError(ValueError):
    """The instructor's checkout cannot grade the tasks asked for."""


# ---------------------------------------------------------------------------------------------
# results

@dataclass
class TaskScore:
    """A task's score in one submission; `points` is None for a task graded by hand."""
    task: Task
    points: float | None
    reasons: list[str] = field(default_factory=list)

    @property
    def max(self) -> float | None:
        return self.task.points if self.task.autograded else None


@dataclass
class SubmissionResult:
    name: str
    path: Path
    scores: dict[str, TaskScore]
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)     # problems of the whole submission
    timings: dict[str, float] = field(default_factory=dict)  # seconds per pytest run / notebook
    # graded cells that passed but wrote to stderr: nbgrader's autograde would give them 0
    stderr_cells: list[str] = field(default_factory=list)
    # the temporary folder it was graded in (removed after grading unless `keep`)
    workspace: Path | None = None
    # per pytest run / notebook: scratchnet.__file__ and sys.executable as that process found them
    origins: dict[str, str] = field(default_factory=dict)
    interpreters: dict[str, str] = field(default_factory=dict)
    # uses of forbidden APIs and indirect access the scan found (scan.Finding), in file order
    flags: list[Finding] = field(default_factory=list)

    @property
    def total(self) -> float:
        return round(sum(s.points for s in self.scores.values() if s.points is not None), 2)

    @property
    def max(self) -> float:
        return round(sum(s.max for s in self.scores.values() if s.max is not None), 2)


# ---------------------------------------------------------------------------------------------
# the instructor's material

def instructor_root(source: str | os.PathLike | None = None) -> Path:
    """The instructor's checkout: `source`, or the one this package runs from
    (`handout.default_source`). It must hold pyproject.toml, scratchnet/ and tests/tasks/."""
    root = default_source() if source is None else Path(source).resolve()
    for needed in ("pyproject.toml", "scratchnet/__init__.py", "tests/tasks"):
        if not (root / needed).exists():
            raise FileNotFoundError(
                f"{root} is not the instructor's checkout (it has no {needed}); the grader needs "
                "the course's source tree: run it from a clone of the course repository")
    return root


@dataclass
class NotebookSpec:
    """The graded parts of one instructor notebook."""
    number: str
    stem: str
    overwrite: dict[str, dict]            # grade_id → instructor cell (graded or locked, not a solution)
    graded: dict[str, tuple[str, float]]  # grade_id → (task id, points): autograded code cells
    needs_data: bool
    lessons: dict[str, str] = field(default_factory=dict)   # cell id → source of the other cells
    # solution grade_id → the instructor's lines around its solution region (stripped)
    scaffolds: dict[str, frozenset[str]] = field(default_factory=dict)
    # ids of the lesson cells no graded cell needs (metadata scratchnet.grading = "skip"): a
    # figure, a comparison, a demonstration; not run when grading, unless the student changed them
    skipped: frozenset[str] = frozenset()
    # the import statements of the lesson cells that run: bound again before each graded cell
    imports: str = ""
    # the modules (or names of a module) that graded cells read, but the student's package's:
    # kept as the kernel's first cell finds them
    watch: tuple[str, ...] = ()


def _nbgrader(cell: dict) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def read_notebook_spec(path: Path, number: str) -> NotebookSpec:
    nb = json.loads(path.read_text(encoding="utf-8"))
    overwrite: dict[str, dict] = {}
    graded: dict[str, tuple[str, float]] = {}
    source = []
    lessons: dict[str, str] = {}
    scaffolds: dict[str, frozenset[str]] = {}
    skipped: set[str] = set()
    for cell in nb.get("cells", []):
        text = "".join(cell.get("source", ""))
        source.append(text)
        meta = _nbgrader(cell)
        gid = meta.get("grade_id")
        if gid and meta.get("solution") and cell.get("cell_type") == "code":
            scaffolds[gid] = _scaffold(text)
        elif not gid and cell.get("id"):
            lessons[cell["id"]] = text
            if _grading(cell) == "skip" and cell.get("cell_type") == "code":
                skipped.add(cell["id"])
        if not gid or meta.get("solution"):
            continue
        if meta.get("grade") or meta.get("locked"):
            overwrite[gid] = cell
        task_id = cell_task(gid)
        if meta.get("grade") and cell.get("cell_type") == "code" and task_id is not None:
            graded[gid] = (task_id, float(meta.get("points", 0) or 0))
    runs = [tree for cell in nb.get("cells", []) if cell.get("cell_type") == "code"
            and not _nbgrader(cell).get("grade_id") and _grading(cell) != "skip"
            and not instructor_only(cell) for tree in [_parsed(cell)] if tree is not None]
    tests = [tree for tree in map(_parsed, (overwrite[g] for g in graded)) if tree is not None]
    imports = [ast.unparse(node) for tree in runs for node in tree.body
               if isinstance(node, (ast.Import, ast.ImportFrom))]
    return NotebookSpec(number, path.stem, overwrite, graded,
                        bool(_NEEDS_DATA.search("\n".join(source))), lessons, scaffolds,
                        frozenset(skipped), "\n".join(dict.fromkeys(imports)),
                        _read_modules(runs, tests))


def _parsed(cell: dict) -> ast.Module | None:
    """A code cell's source as Python (magics blanked), or None when it does not parse."""
    try:
        return ast.parse(cell_python("".join(cell.get("source", ""))))
    except (SyntaxError, ValueError):
        return None


def _read_modules(runs: list[ast.Module], tests: list[ast.Module]) -> tuple[str, ...]:
    """The modules that the graded cells `tests` read through a name that they or the lesson's
    cells `runs` import: `statistics`, `torch.nn.functional`, `unittest.mock`; not the student's
    package."""
    bound = {name: path for tree in [*runs, *tests] for name, path in import_paths(tree).items()}
    reads = {n.id for tree in tests for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return tuple(sorted({bound[name] for name in reads & bound.keys()
                         if bound[name].split(".")[0] != "scratchnet"}))


def _grading(cell: dict) -> str | None:
    return (cell.get("metadata", {}).get("scratchnet", {}) or {}).get("grading")


def _scaffold(source: str) -> frozenset[str]:
    """The stripped lines of a solution cell outside its `### BEGIN/END SOLUTION` region."""
    lines = source.split("\n")
    inside = {i for r in find_regions(source) if r.kind == SOLUTION
              for i in range(r.begin, r.end + 1)}
    return frozenset(line.strip() for i, line in enumerate(lines)
                     if i not in inside and line.strip())


def parse_tasks(spec: str | Iterable[str] | None) -> list[Task]:
    """'T01,T04.4' → the tasks of notebook 01 and T04.4, in registry order (None: all)."""
    if spec is None:
        return list(TASKS)
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec)]
    wanted: set[str] = set()
    for item in filter(None, items):
        item = item.upper().replace("_", ".")
        if re.fullmatch(r"T\d\d", item) and item[1:] in NOTEBOOKS:
            wanted |= {t.id for t in TASKS if t.number == item[1:]}
        elif item in {t.id for t in TASKS}:
            wanted.add(item)
        else:
            raise ValueError(f"no task or notebook {item!r} (write e.g. T01 or T04.4)")
    if not wanted:
        raise ValueError("--tasks names no task")
    return [t for t in TASKS if t.id in wanted]


def task_files() -> set[str]:
    """The package files (relative to the checkout) that hold the students' code."""
    return {w.split(":")[0] for t in TASKS for w in t.where}


def _marker_modules(root: Path, tasks: Sequence[Task]) -> dict[str, list[str]]:
    """For each code task, the test modules of `root`/tests/tasks that mark tests with its marker
    (`@pytest.mark.T04_4`), as paths relative to `root`."""
    texts = {path.relative_to(root).as_posix(): path.read_text(encoding="utf-8", errors="replace")
             for path in sorted((root / "tests" / "tasks").rglob("*.py"))}
    return {t.id: [rel for rel, text in texts.items()
                   if re.search(rf"\bmark\.{t.grade_id}\b", text)] for t in tasks}


# ---------------------------------------------------------------------------------------------
# what of a submission is used

_IMPORTABLE = tuple(sorted(all_suffixes(), key=len, reverse=True))   # .py, .so, .cpython-…so, …


def _module_name(path: Path) -> str | None:
    """The module name an entry of a package folder gives: a folder's name, a module's stem."""
    if path.is_dir():
        return path.name
    for suffix in _IMPORTABLE:
        if path.name.endswith(suffix):
            return path.name[:-len(suffix)]
    return None


def _clash(rel: str, reference: Path) -> str | None:
    """Why the submission's new file `rel` (relative to its scratchnet/, absent from the
    reference package `reference`) is not used, or None when it is."""
    parts = rel.split("/")
    if parts[0] == "coursework":
        return "scratchnet/coursework/ is the course's: nothing added there is used"
    if not rel.endswith(".py"):
        return "only .py files are taken from a submission's package (no compiled module or data)"
    for i, name in enumerate(parts):
        here = reference.joinpath(*parts[:i + 1])
        if here.exists() or here.is_symlink():
            if here.is_dir() and i < len(parts) - 1:
                continue                          # a folder of the course's package
            return f"scratchnet/{'/'.join(parts[:i + 1])} is a file of the course's package"
        folder = reference.joinpath(*parts[:i])
        last = i == len(parts) - 1
        if last and name == "__init__.py":
            return (f"it would turn the course's folder scratchnet/{'/'.join(parts[:i])} into "
                    "another package")
        module = name[:-len(".py")] if last else name
        same = sorted(p.name for p in folder.iterdir() if _module_name(p) == module)
        if same:
            dotted = ".".join(["scratchnet", *parts[:i], module])
            return (f"{dotted} would shadow the course's "
                    f"scratchnet/{'/'.join([*parts[:i], same[0]])}")
        return None                # a new name: everything under a new folder is new too
    return None


def _ignored(name: str) -> bool:
    return name.startswith(".") or name == "__pycache__" or name.endswith((".pyc", ".pyo"))


def submission_files(submission: Path, reference: Path) -> tuple[list[str], list[str]]:
    """The files of `submission` to grade, relative to it: its `scratchnet/` task files (the
    registry's `where`), the .py files it added whose module names clash with nothing of the
    reference package `reference` (the student edition's scratchnet/ folder), and its
    notebooks/*.ipynb; and a line for each file not used, saying why (hidden files and caches
    are skipped silently; a file of the course's package is the student edition's, also
    silently). Symbolic links are never followed."""
    own = task_files()
    taken: list[str] = []
    rejected: list[str] = []

    def link(rel: str) -> None:
        rejected.append(f"{rel} is not used: it is a symbolic link (graded as absent)")

    package = submission / "scratchnet"
    if package.is_symlink():
        link("scratchnet/")
    else:
        for folder, dirs, names in os.walk(package):
            base = Path(folder)
            for d in sorted(dirs):
                if not _ignored(d) and (base / d).is_symlink():
                    link(f"{(base / d).relative_to(submission).as_posix()}/")
            dirs[:] = sorted(d for d in dirs if not _ignored(d) and not (base / d).is_symlink())
            for name in sorted(names):
                if _ignored(name):
                    continue
                path = base / name
                rel = path.relative_to(submission).as_posix()
                if path.is_symlink():
                    link(rel)
                elif not path.is_file():
                    rejected.append(f"{rel} is not used: it is not a regular file")
                elif rel in own:
                    taken.append(rel)
                elif not (reference / rel[len("scratchnet/"):]).exists():
                    why = _clash(rel[len("scratchnet/"):], reference)
                    if why is None:
                        taken.append(rel)
                    else:
                        rejected.append(f"{rel} is not used: {why}")
    notebooks = submission / "notebooks"
    if notebooks.is_symlink():
        link("notebooks/")
    elif notebooks.is_dir():
        for path in sorted(notebooks.glob("*.ipynb")):
            rel = path.relative_to(submission).as_posix()
            if path.is_symlink():
                link(rel)
            elif path.is_file():
                taken.append(rel)
    return taken, rejected


# ---------------------------------------------------------------------------------------------
# processes (killed on Ctrl-C or when a time limit runs out)

def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Send `sig` to the process group of `proc` (a session leader), only while `proc` has not
    been reaped: until then its pid, the group's id, cannot be anyone else's."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


class _Processes:
    """The grader's subprocesses. After `kill_all` none is left and none can start: the check
    of `cancelled`, the start and the registration are one step under `lock`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.live: dict[subprocess.Popen, bool] = {}     # process → stop it with SIGTERM first
        self.cancelled = threading.Event()

    def run(self, args: list[str], *, cwd: Path, env: dict, limit: float, log: Path,
            term_first: bool = False) -> tuple[int | None, bool]:
        """Run `args` in its own session; → (exit status, timed out). `term_first`: stop it with
        SIGTERM (its handler cleans up) and SIGKILL only 5 s later."""
        with open(log, "ab") as out, self.lock:
            if self.cancelled.is_set():
                raise KeyboardInterrupt
            proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
            self.live[proc] = term_first
        try:
            try:
                return proc.wait(timeout=limit), False
            except subprocess.TimeoutExpired:
                self.stop(proc, term_first)
                return proc.returncode, True
        finally:
            with self.lock:
                self.live.pop(proc, None)

    @staticmethod
    def stop(proc: subprocess.Popen, term_first: bool = False) -> None:
        if term_first:
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(proc, signal.SIGKILL)
        proc.wait()

    def kill_all(self) -> None:
        with self.lock:
            self.cancelled.set()
            live = dict(self.live)
        for proc, term_first in live.items():
            _signal_group(proc, signal.SIGTERM if term_first else signal.SIGKILL)
        deadline = time.monotonic() + 3
        for proc in live:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc, signal.SIGKILL)


def _records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:      # a line cut short by a kill
            pass
    return out


def _log_tail(path: Path, lines: int = 1) -> str:
    if not path.exists():
        return ""
    text = [t for t in path.read_text(errors="replace").splitlines() if t.strip()]
    return " | ".join(t.strip() for t in text[-lines:])


# ---------------------------------------------------------------------------------------------
# one submission's folder

def drop_fast_paths(path: Path) -> None:
    """Delete the FAST PATH regions of a submission's .py file in place, as the hand-out does: a
    student's file has none, the instructor's solution edition does, and they call modules the
    student edition does not ship. A file whose markers do not pair up is left as it is."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if "FAST PATH" not in text:
        return
    try:
        path.write_text(without_fast_paths(text, str(path)), encoding="utf-8")
    except MarkerError:
        return


def _inherited_environment() -> dict[str, str]:
    """The grader's environment for its subprocesses, less what would change how Python, pytest
    or scratchnet run there (each sets its own)."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("PYTHON", "PYTEST", "SCRATCHNET_", "COV_"))}


class _Workspace:
    """A submission's copy in a fresh temporary folder: the student edition's `scratchnet/` with
    the submission's files (`submission_files`), its notebooks, the instructor's tests/tasks,
    pytest.ini and the runtime module."""

    def __init__(self, grader: _Grader, path: Path) -> None:
        self.grader, self.submission = grader, path
        self.dir: Path | None = None
        self.lock = threading.Lock()
        self.units = 0            # units of work not finished yet: the folder goes with the last
        self.error: str | None = None
        self.problems: list[str] = []     # the submission's files not used, and why
        self.findings: list[Finding] = []  # what the scan found in them
        self.group: str | None = None      # the cgroup that caps its processes
        self.broken: BaseException | None = None

    def acquire(self) -> Path:
        with self.lock:
            if self.broken is not None:
                raise RuntimeError(f"could not copy the submission: {self.broken}")
            if self.dir is None:
                if self.grader.procs.cancelled.is_set():
                    raise KeyboardInterrupt
                self.dir = Path(tempfile.mkdtemp(prefix="scratchnet-grade-")).resolve()
                self.grader.temp_dirs.add(self.dir)
                self.group = self.grader.sandbox.group(self.dir.name)
                try:
                    self._fill(self.dir)
                except Exception as e:
                    self.broken = e
                    raise
            return self.dir

    def release(self) -> bool:
        """One unit of work is over; after the last (→ True), the folder is removed."""
        with self.lock:
            self.units -= 1
            if self.units == 0:
                self.grader.sandbox.release(self.group)
            if self.units == 0 and self.dir is not None and not self.grader.keep:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.grader.temp_dirs.discard(self.dir)
            return self.units == 0

    def _fill(self, tmp: Path) -> None:
        g = self.grader
        reference = g.reference / "scratchnet"
        taken, self.problems = submission_files(self.submission, reference)
        shutil.copytree(reference, tmp / "scratchnet", symlinks=True)
        for rel in task_files():            # the submission's, or absent
            (tmp / rel).unlink(missing_ok=True)
        (tmp / "notebooks").mkdir()
        for rel in taken:
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.submission / rel, target, follow_symlinks=False)
            if target.suffix == ".py":
                drop_fast_paths(target)
        self.findings = g.scan(tmp, taken)
        # the probes the tests call run here, in the worker (grade_runtime.serve)
        shutil.copytree(g.material / "tests" / "tasks", tmp / "tests" / "tasks")
        (tmp / ".grader").mkdir()
        shutil.copyfile(g.material / f"{RUNTIME_MODULE}.py",
                        tmp / ".grader" / f"{RUNTIME_MODULE}.py")
        for folder in ("home", "tmp"):
            (tmp / ".grader" / folder).mkdir()

    def env(self) -> dict[str, str]:
        """The environment of the processes that run the submission's code."""
        assert self.dir is not None
        env = _inherited_environment()
        private = self.dir / ".grader"
        env.update(HOME=str(private / "home"), XDG_CACHE_HOME=str(private / "home"),
                   MPLCONFIGDIR=str(private / "home"),
                   TMPDIR="/tmp" if self.grader.sandbox.bwrap else str(private / "tmp"))
        env.update(PYTHONPATH=os.pathsep.join([str(self.dir), str(self.dir / ".grader")]),
                   PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0", CUDA_VISIBLE_DEVICES="",
                   MPLBACKEND="Agg", OMP_NUM_THREADS=str(self.grader.threads),
                   MKL_NUM_THREADS=str(self.grader.threads),
                   **{grade_runtime.ROOT_ENV: str(self.dir)})
        if self.grader.data_dir is not None:
            env["SCRATCHNET_DATA_DIR"] = str(self.grader.data_dir)
        return env


@dataclass
class _Submission:
    """A submission being graded: its result, folder, notebook cells' outcomes (grade_id →
    (passed, why not)) and when its first unit of work began."""
    result: SubmissionResult
    ws: _Workspace
    outcome: dict[str, tuple[bool, str]] = field(default_factory=dict)
    started: float = 0.0


# ---------------------------------------------------------------------------------------------
# the grader

class _Grader:
    def __init__(self, root: Path, tasks: list[Task], timeout: float, cell_timeout: float,
                 notebook_timeout: float, jobs: int, keep: bool,
                 log: Callable[[str], None], sandbox: Sandbox | None = None,
                 on_result: Callable[[SubmissionResult], None] | None = None) -> None:
        self.root, self.tasks, self.timeout = root, tasks, timeout
        self.cell_timeout, self.notebook_timeout = cell_timeout, notebook_timeout
        self.jobs, self.keep, self.log = jobs, keep, log
        self.threads = max(1, (os.cpu_count() or 1) // jobs)
        self.procs = _Processes()
        self.plugins = _plugin_args()
        self.temp_dirs: set[Path] = set()
        self.code_tasks = [t for t in tasks if t.kind == "code"]
        self.nb_tasks = [t for t in tasks if t.autograded and t.kind != "code"]
        self.nb_task_ids = {t.id for t in self.nb_tasks}
        self.specs: dict[str, NotebookSpec] = {}
        self.test_modules: dict[str, list[str]] = {}
        self._check_material()
        self.data_dir: Path | None = None
        self.reference: Path = Path()
        self.runs: Path = Path()           # the runners' files, out of the sandbox's reach
        self.material: Path = Path()       # a private copy of the instructor's tests
        self.sandbox = sandbox or Sandbox()
        self.on_result = on_result
        self.result_lock = threading.Lock()
        self.aliases = torch_aliases()

    def _check_material(self) -> None:
        """Read the instructor's notebooks and test modules; raise InstructorError unless they
        grade every task asked for (a task that cannot be graded must not score 0 unnoticed)."""
        problems = []
        for number in sorted({t.number for t in self.nb_tasks}):
            path = self.root / "notebooks" / f"{NOTEBOOKS[number]}.ipynb"
            ids = ", ".join(t.id for t in self.nb_tasks if t.number == number)
            if not path.is_file():
                problems.append(f"notebooks/{path.name} is missing (it grades {ids})")
                continue
            try:
                self.specs[number] = read_notebook_spec(path, number)
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                problems.append(f"notebooks/{path.name} could not be read ({e}); it grades {ids}")
        for t in self.nb_tasks:
            spec = self.specs.get(t.number)
            if spec is None:
                continue
            points = [pts for tid, pts in spec.graded.values() if tid == t.id]
            if not points or sum(points) <= 0:
                problems.append(f"{t.id} ({t.kind}): notebooks/{spec.stem}.ipynb has no graded "
                                f"code cell with points and a grade_id {t.grade_id}…")
        self.test_modules = _marker_modules(self.root, self.code_tasks)
        for t in self.code_tasks:
            if not self.test_modules[t.id]:
                problems.append(f"{t.id} (code): no test in tests/tasks is marked {t.grade_id} "
                                f"(@pytest.mark.{t.grade_id})")
        if problems:
            raise InstructorError(f"the instructor's checkout {self.root} cannot grade the tasks "
                                  "asked for:\n  " + "\n  ".join(problems))

    def confinement(self) -> dict[str, list[Path]]:
        """What the sandbox hides — the instructor's checkout (its solutions, its notebooks'
        hidden tests) — and shows again read-only: the Python that runs the code (which may
        live in the checkout or under /tmp) and the course data."""
        python = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent]
        return {"hidden": [self.root],
                "readable": [*python, *([self.data_dir] if self.data_dir else [])]}

    # -- the static scan ------------------------------------------------------------------------
    def scan(self, tmp: Path, taken: list[str]) -> list[Finding]:
        """The scan of a workspace's copies of the submission's files (`taken`): its package
        files, each task function charged with what it (or a function of its file that it
        calls) uses, and its notebooks' own cells (`_scan_notebook`)."""
        owners: dict[str, dict[str, str]] = {}
        for t in TASKS:
            for where in t.where:
                path, qualname = where.split(":")
                owners.setdefault(path, {})[qualname] = t.id
        findings: list[Finding] = []
        for rel in taken:
            if rel.endswith(".py"):
                text = (tmp / rel).read_text(encoding="utf-8", errors="replace")
                findings += scan_source(text, rel, owners.get(rel, {}), aliases=self.aliases)
        for spec in self.specs.values():
            path = tmp / "notebooks" / f"{spec.stem}.ipynb"
            if f"notebooks/{spec.stem}.ipynb" in taken and path.is_file():
                findings += self._scan_notebook(path, spec)
        return findings

    def _scan_notebook(self, path: Path, spec: NotebookSpec) -> list[Finding]:
        """The scan of a submission's notebook: its graded cells are the instructor's (as they
        will run), its solution cells the student's, and its other cells the lesson's when
        unchanged, the student's when written or changed."""
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
            code = [(i, c) for i, c in enumerate(nb["cells"]) if c.get("cell_type") == "code"]
        except (ValueError, KeyError, TypeError, AttributeError):
            return []                     # grade_notebook says why it cannot be read
        cells = []
        for index, cell in code:
            meta, text = _nbgrader(cell), "".join(cell.get("source", ""))
            gid, label = meta.get("grade_id"), f"notebooks/{spec.stem}.ipynb, cell {index}"
            if gid in spec.overwrite:
                own = spec.overwrite[gid]
                cells.append(Cell(label, "".join(own.get("source", "")), "graded"))
            elif gid and meta.get("solution"):
                cells.append(Cell(label, text, "solution", cell_task(gid),
                                  spec.scaffolds.get(gid, frozenset())))
            elif spec.lessons.get(cell.get("id")) == text:
                cells.append(Cell(label, text, "lesson"))
            else:
                cells.append(Cell(label, text, "student"))
        return scan_cells(cells, aliases=self.aliases)

    def apply_flags(self, result: SubmissionResult, findings: list[Finding]) -> None:
        """A task whose code uses a forbidden API or reaches around the grader scores 0, and so
        does a check of such code; indirect access outside the task functions (at a file's top
        level, in a notebook's own cells) scores 0 every task it can reach: the code tasks for a
        package file, the notebook's tasks for a cell."""
        result.flags = list(findings)
        charged: dict[str, list[Finding]] = {}
        for f in findings:
            if f.task is not None:
                charged.setdefault(f.task, []).append(f)
            elif f.kind != "forbidden API":
                reached = [t.id for t in self.tasks if (
                    t.kind == "code" if f.file.startswith("scratchnet/")
                    else t.kind != "code" and f.file.startswith(f"notebooks/{t.notebook}.ipynb,"))]
                for task_id in reached:
                    charged.setdefault(task_id, []).append(f)
        for t in self.tasks:
            score = result.scores[t.id]
            if score.points is None:
                continue
            own = charged.get(t.id, [])
            via = sorted(set(t.depends) & set(charged)) if t.kind == "check" else []
            if not own and not via:
                continue
            score.points = 0.0
            why = ("scored 0: " + "; ".join(f"{f.kind} {f.name} ({f.file}:{f.line})"
                                            for f in own[:3])) if own else (
                f"scored 0: it checks {', '.join(via)}, whose code the scan flagged")
            score.reasons.insert(0, why)

    # -- setup ----------------------------------------------------------------------------------
    def prepare(self) -> None:
        base = Path(tempfile.mkdtemp(prefix="scratchnet-grade-ref-")).resolve()
        self.temp_dirs.add(base)
        self.reference = write_handout(base / "student", source=self.root)
        # what grades: copied once, before any submission runs, where none can write
        self.material = base / "material"
        shutil.copytree(self.root / "tests" / "tasks", self.material / "tests" / "tasks",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".*"))
        shutil.copyfile(Path(grade_runtime.__file__), self.material / f"{RUNTIME_MODULE}.py")
        # the markers: tests/tasks/conftest.py registers them
        (self.material / "pytest.ini").write_text(
            "[pytest]\n"
            "# written by the grader\n"
            "testpaths = tests/tasks\n"
            "addopts = --strict-markers\n"
            "# a backstop: the runtime's own alarm stops a test after `timeout` seconds\n"
            f"timeout = {2 * self.timeout + 30:g}\n"
            "timeout_method = thread\n")
        self.runs = base / "runs"
        self.runs.mkdir()
        warning = self.sandbox.warning()
        if warning:
            self.log(warning)
        if any(spec.needs_data for spec in self.specs.values()):
            from ..data import ensure_data

            train, _ = ensure_data()
            self.data_dir = train.parent.resolve()

    def cleanup(self) -> None:
        for d in list(self.temp_dirs):
            if not self.keep or d.name.startswith("scratchnet-grade-ref-"):
                shutil.rmtree(d, ignore_errors=True)
            self.temp_dirs.discard(d)

    # -- pytest ---------------------------------------------------------------------------------
    def _pytest(self, ws: _Workspace, tmp: Path, args: list[str], limit: float) -> dict:
        """pytest on the instructor's tests, in a process of the grader's that never imports
        the submission's package: the tests send the data of each case to a worker in the
        sandbox (`grade_runtime.serve`, the only process that runs the submission's code),
        get the values it computed back as data, and decide here."""
        private = Path(tempfile.mkdtemp(prefix="code-", dir=self.runs))
        results, log = private / "results.jsonl", private / "pytest.log"
        worker = self.sandbox.launcher(
            [sys.executable, str(tmp / ".grader" / f"{RUNTIME_MODULE}.py"), "--probes",
             str(tmp / "tests" / "tasks")], [tmp], cpu_seconds=2 * self.threads * limit,
            group=ws.group, **self.confinement())
        spec = {"argv": worker, "cwd": str(tmp), "env": ws.env(), "root": str(tmp),
                "timeout": self.timeout, "log": str(private / "worker.log"),
                "results": str(results)}
        own = Path(__file__).resolve().parents[2]      # where this scratchnet is imported from
        env = _inherited_environment()
        env.update(PYTHONPATH=os.pathsep.join([str(self.material), str(own)]),
                   PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0", CUDA_VISIBLE_DEVICES="",
                   PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", OMP_NUM_THREADS="1",
                   MKL_NUM_THREADS="1", HOME=str(private), MPLCONFIGDIR=str(private),
                   **{grade_runtime.RESULTS_ENV: str(results),
                      grade_runtime.TIMEOUT_ENV: f"{self.timeout:g}",
                      grade_runtime.WORKER_ENV: json.dumps(spec)})
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   "-p", RUNTIME_MODULE, *self.plugins, "--continue-on-collection-errors",
                   "-c", str(self.material / "pytest.ini"), "--rootdir", str(self.material),
                   *args]
        code, timed_out = self.procs.run(command, cwd=private, env=env, limit=limit, log=log,
                                         term_first=True)
        run = {"collected": None, "reports": {}, "collect_errors": [], "finished": False,
               "started": [], "origin": None, "code": code, "timed_out": timed_out,
               "log": _log_tail(log, 3)}
        for r in _records(results):
            kind = r.get("event")
            if kind == "origin":
                run["origin"] = r
            elif kind == "collected":
                run["collected"] = r["items"]
            elif kind == "collect_error":
                run["collect_errors"].append(r)
            elif kind == "start":
                run["started"].append(r["nodeid"])
            elif kind == "report":
                run["reports"].setdefault(r["nodeid"], []).append(r)
            elif kind == "finished":
                run["finished"] = True
        return run

    @staticmethod
    def _outcome(reports: list[dict]) -> tuple[str, str] | None:
        """→ (passed|failed, message), or None when the test has not finished. A skipped or
        xfailed test has failed: only a test that ran and passed earns its share."""
        for r in reports:
            if r["outcome"] == "failed":
                return "failed", r["message"]
        for r in reports:
            if r["outcome"] == "skipped":
                what = "xfailed" if r.get("xfail") else "skipped"
                return "failed", f"{what} (counts as failed): {r['message']}".rstrip(": ")
        if any(r["when"] == "call" and r["outcome"] == "passed" for r in reports):
            return "passed", ""
        return None

    def grade_code(self, sub: _Submission) -> None:
        ws, result = sub.ws, sub.result
        tmp = ws.acquire()
        markers = {t.grade_id: t for t in self.code_tasks}
        expr = " or ".join(markers)
        run = self._pytest(ws, tmp, ["-m", expr, str(self.material / "tests" / "tasks")],
                           limit=max(60.0, 20 * self.timeout))
        origin = run["origin"]
        if origin:
            if origin.get("file"):
                result.origins["pytest"] = origin["file"]
            if origin.get("executable"):
                result.interpreters["pytest"] = origin["executable"]
        if origin and origin.get("file") and origin.get("error"):
            self._fail_all(result, self.code_tasks, origin["error"])
            result.errors.append(origin["error"])
            return
        if run["collected"] is None:
            why = ("the test run timed out before it collected the tests" if run["timed_out"]
                   else f"the test run failed before it collected the tests: {run['log']}")
            if origin and origin.get("error"):
                why = origin["error"]
            self._fail_all(result, self.code_tasks, why)
            return
        tests = {item["nodeid"]: [m for m in item["markers"] if m in markers]
                 for item in run["collected"]}
        tests = {k: v for k, v in tests.items() if v}
        outcomes: dict[str, tuple[str, str]] = {}

        def absorb(run: dict, cause: str) -> None:
            for nodeid, reports in run["reports"].items():
                o = self._outcome(reports)
                if o is not None and nodeid in tests:
                    outcomes[nodeid] = o
            if not run["finished"]:
                for nodeid in reversed(run["started"]):
                    if nodeid in tests and nodeid not in outcomes:
                        outcomes[nodeid] = ("failed", cause)
                        break

        def cause_of(run: dict) -> str:
            if run["timed_out"]:
                return "the test run ran out of time here and was stopped"
            return f"the test run crashed here (exit status {run['code']})"

        absorb(run, cause_of(run))
        if not run["finished"]:
            # what the time limit left, one task at a time; each stop costs one test
            for grade_id in markers:
                for _attempt in range(3):
                    todo = [k for k, v in tests.items() if grade_id in v and k not in outcomes]
                    if not todo:
                        break
                    rerun = self._pytest(ws, tmp, [str(self.material / k) for k in todo],
                                         limit=5 * self.timeout + 30)
                    if rerun["collected"] is None:
                        break
                    absorb(rerun, cause_of(rerun))
                    if rerun["finished"]:
                        break
        for t in self.code_tasks:
            mine = [k for k, v in tests.items() if t.grade_id in v]
            score = result.scores[t.id]
            if not mine:
                score.points = 0.0
                modules = self.test_modules.get(t.id, [])
                errors = [f"{e['nodeid']}: " + ("skipped: " if e.get("outcome") == "skipped"
                                                else "") + e["message"]
                          for e in run["collect_errors"]
                          if any(e["nodeid"] == m or e["nodeid"].startswith(m + "::")
                                 for m in modules)]
                why = "; ".join(errors) or (
                    f"no test marked {t.grade_id} was collected from "
                    f"{', '.join(modules) or 'tests/tasks'}")
                score.reasons.append(f"no test ran: {why}")
                continue
            passed = [k for k in mine if outcomes.get(k, ("failed",))[0] == "passed"]
            score.points = round(t.points * len(passed) / len(mine), 2)
            for k in mine:
                if k not in passed:
                    _, message = outcomes.get(k, ("failed", "not run: the test run crashed"))
                    score.reasons.append(f"{k.split('::', 1)[-1]}: {message}")

    @staticmethod
    def _fail_all(result: SubmissionResult, tasks: Sequence[Task], why: str) -> None:
        for t in tasks:
            result.scores[t.id].points = 0.0
            result.scores[t.id].reasons.append(why)

    # -- notebooks ------------------------------------------------------------------------------
    def grade_notebook(self, sub: _Submission, spec: NotebookSpec) -> None:
        ws, result, outcome = sub.ws, sub.result, sub.outcome
        tmp = ws.acquire()
        wanted = {gid for gid, (tid, _) in spec.graded.items() if tid in self.nb_task_ids}
        path = tmp / "notebooks" / f"{spec.stem}.ipynb"
        if not path.is_file():
            for gid in wanted:
                outcome[gid] = (False, f"notebooks/{spec.stem}.ipynb is missing")
            return
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
            present = merge_notebook(nb, spec)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            for gid in wanted:
                outcome[gid] = (False, f"notebooks/{spec.stem}.ipynb could not be read: {e}")
            return
        path.write_text(json.dumps(nb), encoding="utf-8")
        for gid in wanted - present:
            outcome[gid] = (False, f"cell {gid} is missing from the notebook")
        if not wanted & present:
            return
        # the runner is the grader's: its job, records and log are where the kernel cannot write
        run = Path(tempfile.mkdtemp(prefix=f"nb{spec.number}-", dir=self.runs))
        results, job, log = run / "results.jsonl", run / "job.json", run / "runner.log"
        # the kernel's sockets: a short path (a socket's is at most 107 bytes long)
        ipc = Path(tempfile.mkdtemp(prefix="snk-", dir="/tmp" if Path("/tmp").is_dir() else None))
        kernel_json = run / "jupyter" / "kernels" / KERNEL_NAME / "kernel.json"
        kernel_json.parent.mkdir(parents=True)
        budget = self.notebook_timeout + 90
        kernel_json.write_text(json.dumps({
            # in its own PID namespace a kernel's parent is PID 1, which ipykernel would take
            # for its parent having died: JPY_PARENT_PID=1 turns the check off (bwrap's
            # --die-with-parent does its work)
            "argv": self.sandbox.launcher(
                [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                [tmp, ipc], cpu_seconds=2 * self.threads * budget, group=ws.group,
                env={"JPY_PARENT_PID": "1"}, **self.confinement()),
            "display_name": "Python (scratchnet grader)", "language": "python",
            "metadata": {"debugger": False}}, indent=1))
        job.write_text(json.dumps({
            "notebook": str(path), "graded": sorted(wanted & present), "results": str(results),
            "imports": spec.imports, "watch": list(spec.watch),
            "cell_timeout": self.cell_timeout, "budget": self.notebook_timeout,
            "root": str(tmp), "env": ws.env(), "kernel": KERNEL_NAME, "ipc": str(ipc)}))
        runner_env = dict(os.environ)
        runner_env.pop("PYTHONPATH", None)
        runner_env["JUPYTER_PATH"] = str(run / "jupyter")
        runner_env["JUPYTER_RUNTIME_DIR"] = str(ipc)     # the kernel's connection file
        runner_env["TMPDIR"] = str(run)
        try:
            _, timed_out = self.procs.run(
                [sys.executable, str(self.material / f"{RUNTIME_MODULE}.py"), str(job)],
                cwd=run, env=runner_env, limit=budget, log=log, term_first=True)
        finally:
            shutil.rmtree(ipc, ignore_errors=True)
        records = _records(results)
        ended = "not run: the notebook's run stopped"
        stopped_by = ""            # the runner's error, if one stopped it
        failed: dict[str, str] = {}
        seen: set[str] = set()
        for r in records:
            kind = r.get("event")
            if kind == "origin":
                if r.get("file"):
                    result.origins[spec.stem] = r["file"]
                if r.get("executable"):
                    result.interpreters[spec.stem] = r["executable"]
                if r.get("error") and r.get("file"):
                    for gid in wanted & present:
                        outcome[gid] = (False, r["error"])
                    ws.error = r["error"]
            elif kind == "cell":
                seen.add(r["grade_id"])
                if r["error"] and r["grade_id"] not in failed:
                    failed[r["grade_id"]] = r["error"]
                elif r.get("stderr") and r["grade_id"] not in result.stderr_cells:
                    result.stderr_cells.append(r["grade_id"])
            elif kind == "tampered" and r.get("names"):
                during = r.get("when") == "after"
                where = f"while cell {r.get('grade_id')} ran" if during \
                    else f"before cell {r.get('grade_id')}"
                ws.findings.append(Finding(
                    f"notebooks/{spec.stem}.ipynb, {where}", 0,
                    "changed at run time: " + ", ".join(r["names"][:4]), "indirect access",
                    cell_task(r.get("grade_id")) if during else None))
            elif kind == "budget":
                ended = f"not run: the notebook's time limit ({self.notebook_timeout:g} s) ran out"
            elif kind == "dead":
                ended = "not run: the kernel died (in an earlier cell or this one)"
            elif kind == "finished" and r.get("error"):
                stopped_by = r["error"]
                ended = f"not run: the notebook's run stopped: {stopped_by}"
        unreadable = [r["error"] for r in records if r.get("event") == "unreadable"]
        if timed_out:
            ended = "not run: the notebook's run hung and was stopped"
        elif unreadable:
            ended = f"notebooks/{spec.stem}.ipynb could not be read: {unreadable[0]}"
        elif not any(r.get("event") == "started" for r in records):
            ended = f"not run: the kernel did not start: {stopped_by or _log_tail(log)}"
        for gid in wanted & present:
            if gid in outcome:      # the package came from elsewhere
                continue
            if gid in failed:
                outcome[gid] = (False, failed[gid])
            elif gid in seen:
                outcome[gid] = (True, "")
            else:
                outcome[gid] = (False, ended)

    def score_notebooks(self, result: SubmissionResult,
                        outcome: dict[str, tuple[bool, str]]) -> None:
        for t in self.nb_tasks:
            cells = [(gid, pts) for spec in self.specs.values()
                     for gid, (tid, pts) in spec.graded.items() if tid == t.id]
            score = result.scores[t.id]
            total = sum(p for _, p in cells)
            earned = 0.0
            for gid, pts in cells:
                ok, why = outcome.get(gid, (False, "not run"))
                if ok:
                    earned += pts
                else:
                    score.reasons.append(f"cell {gid}: {why}")
            score.points = round(t.points * earned / total, 2)   # total > 0: _check_material

    # -- all of it ------------------------------------------------------------------------------
    def _unit(self, sub: _Submission, label: str, work: Callable[[], None]) -> None:
        began = time.monotonic()
        try:
            work()
            sub.result.timings[label] = round(time.monotonic() - began, 1)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001 - a grader bug must not stop the others
            sub.result.errors.append(f"grader error ({label}): {type(e).__name__}: {e}")
        finally:
            if sub.ws.release() and not self.procs.cancelled.is_set():
                self._finish(sub)

    def _finish(self, sub: _Submission) -> None:
        """The submission's last unit of work is over: score its notebooks, gather its errors."""
        result, ws = sub.result, sub.ws
        self.score_notebooks(result, sub.outcome)
        self.apply_flags(result, ws.findings)
        for error in [*ws.problems, *([ws.error] if ws.error else [])]:
            if error not in result.errors:
                result.errors.append(error)
        for s in result.scores.values():      # no points lost without a reason
            if s.points is not None and s.points < s.task.points and not s.reasons:
                s.reasons.append("not graded: " + ("; ".join(result.errors)
                                                   or "no result was recorded"))
        result.workspace = ws.dir
        result.seconds = round(time.monotonic() - sub.started, 1) if sub.started else 0.0
        self.log(f"graded {result.name}: {result.total:g}/{result.max:g} "
                 f"({result.seconds:.0f} s)" + (" FLAGGED" if result.flags else ""))
        if self.on_result is not None:
            with self.result_lock:
                self.on_result(result)

    def run(self, submissions: list[Path], names: list[str]) -> list[SubmissionResult]:
        # per submission, the longest first: notebooks that train, the tests, the other notebooks
        heavy = [s for _, s in sorted(self.specs.items()) if s.needs_data]
        light = [s for _, s in sorted(self.specs.items()) if not s.needs_data]
        subs: list[_Submission] = []
        queue: deque[tuple[_Submission, str, Callable[[], None]]] = deque()
        for path, name in zip(submissions, names):
            scores = {t.id: TaskScore(t, None if not t.autograded else 0.0) for t in self.tasks}
            sub = _Submission(SubmissionResult(name, path, scores), _Workspace(self, path))
            work = [(s.stem, partial(self.grade_notebook, sub, s)) for s in heavy]
            if self.code_tasks:
                work.append(("pytest", partial(self.grade_code, sub)))
            work += [(s.stem, partial(self.grade_notebook, sub, s)) for s in light]
            sub.ws.units = len(work)
            subs.append(sub)
            queue.extend((sub, label, w) for label, w in work)
            if not work:                     # written tasks only: nothing to run
                self._finish(sub)

        lock = threading.Lock()
        failures: list[BaseException] = []

        def worker() -> None:
            while True:
                with lock:
                    if self.procs.cancelled.is_set() or failures or not queue:
                        return
                    sub, label, work = queue.popleft()
                    sub.started = sub.started or time.monotonic()
                try:
                    self._unit(sub, label, work)
                except KeyboardInterrupt:        # cancelled
                    return
                except BaseException as e:  # noqa: BLE001 - a grader bug: stop everything
                    failures.append(e)
                    return

        # daemon threads, watched by polling: the main thread holds no lock when Ctrl-C comes,
        # and a worker that does not stop cannot keep the process alive
        threads = [threading.Thread(target=worker, name=f"grade-{i}", daemon=True)
                   for i in range(min(self.jobs, len(queue)))]
        try:
            for t in threads:
                t.start()
            while any(t.is_alive() for t in threads):
                if failures:
                    raise failures[0]
                time.sleep(0.1)
            if failures:
                raise failures[0]
        except BaseException:
            self.procs.kill_all()           # queued work is dropped, running work ends now
            deadline = time.monotonic() + 30
            for t in threads:
                if t.is_alive():
                    t.join(max(0.0, deadline - time.monotonic()))
            raise
        return [sub.result for sub in subs]


def merge_notebook(nb: dict, spec: NotebookSpec) -> set[str]:
    """Overwrite, in the submission's notebook `nb`, every cell that the instructor's marks as
    graded or locked (and not a solution) with the instructor's cell of the same grade_id:
    source, metadata and type (nbgrader's OverwriteCells); mark the lesson cells that the
    instructor's skips when grading, where the student left them unchanged. → the graded
    grade_ids present."""
    present: set[str] = set()
    for cell in nb["cells"]:
        gid = _nbgrader(cell).get("grade_id")
        if gid in spec.overwrite:
            src = spec.overwrite[gid]
            cell["cell_type"] = src["cell_type"]
            cell["source"] = deepcopy(src["source"])
            cell["metadata"] = deepcopy(src.get("metadata", {}))
            if cell["cell_type"] == "code":
                cell["outputs"], cell["execution_count"] = [], None
            else:
                cell.pop("outputs", None)
                cell.pop("execution_count", None)
            if gid in spec.graded:
                present.add(gid)
        elif cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
            meta = cell.setdefault("metadata", {}).setdefault("scratchnet", {})
            meta.pop("grading", None)     # the instructor's word decides what is skipped
            if cell.get("id") in spec.skipped \
                    and spec.lessons.get(cell["id"]) == "".join(cell.get("source", "")):
                meta["grading"] = "skip"
    return present


def submission_names(paths: Sequence[Path]) -> list[str]:
    """The names of submissions in tables and files: their folders' names, or their paths
    when two folders share a name."""
    names = [p.name or str(p) for p in paths]
    if len(set(names)) < len(names):
        names = [str(p) for p in paths]
    return names


def check_submission(path: str | os.PathLike) -> Path:
    """The submission's folder, or an error saying why it is not a hand-out."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ValueError(f"{path} is a file, not a folder: give the folder of a copy of the "
                         "hand-out (an archive: unpack it first)")
    if not p.is_dir():
        raise FileNotFoundError(f"{path}: no such folder")
    if not (p / "scratchnet" / "__init__.py").is_file():
        raise ValueError(f"{path} is not a copy of the hand-out: it has no scratchnet/__init__.py")
    return p.resolve()


def grade(submissions: Sequence[str | os.PathLike], *, tasks: str | Iterable[str] | None = None,
          timeout: float = DEFAULT_TIMEOUT, cell_timeout: float | None = None,
          notebook_timeout: float | None = None, jobs: int = DEFAULT_JOBS,
          source: str | os.PathLike | None = None, keep: bool = False,
          log: Callable[[str], None] | None = None, sandbox: Sandbox | None = None,
          on_result: Callable[[SubmissionResult], None] | None = None) -> list[SubmissionResult]:
    """Grade each submission (a student's copy of the hand-out folder); → one result each, in
    order. `tasks`: ids ('T04.4') or notebooks ('T04'), default all; `timeout`: seconds per test
    (a cell gets `cell_timeout`, default 4×, a notebook `notebook_timeout`, default 20×);
    `jobs`: processes at a time (a submission's pytest run and notebooks run side by side);
    `source`: the instructor's checkout (default: the one this package runs from); `keep`: leave
    the temporary folders (each result's `workspace`, for debugging); `log`: called with a line
    per graded submission; `on_result`: called with each result as soon as it is complete (one
    at a time). Raises InstructorError when the checkout cannot grade the tasks."""
    if timeout <= 0 or jobs < 1:
        raise ValueError(f"the time limit must be > 0 s (not {timeout:g}) and jobs >= 1 "
                         f"(not {jobs})")
    if not submissions:
        raise ValueError("no submission to grade")
    paths = [check_submission(s) for s in submissions]
    root = instructor_root(source)
    chosen = parse_tasks(tasks)
    grader = _Grader(root, chosen, float(timeout),
                     float(cell_timeout if cell_timeout is not None else 4 * timeout),
                     float(notebook_timeout if notebook_timeout is not None else 20 * timeout),
                     int(jobs), keep, log or (lambda line: None), sandbox, on_result)
    try:
        grader.prepare()
        return grader.run(paths, submission_names(paths))
    finally:
        grader.cleanup()


# ---------------------------------------------------------------------------------------------
# output

def _fmt(score: TaskScore) -> str:
    return "manual" if score.points is None else f"{score.points:g}"


def format_table(results: Sequence[SubmissionResult], verbose: bool = False) -> str:
    """Points per task (rows) and submission (columns), with the total and the maximum; beyond
    six submissions, one row per submission instead. With `verbose`, why points were lost (the
    first line of each failing test's or cell's message)."""
    if not results:
        return ""
    tasks = [s.task for s in results[0].scores.values()]
    maxima = ["manual" if not t.autograded else f"{t.points:g}" for t in tasks]
    if len(results) <= 6:
        header = ["task", "", "max", *(r.name for r in results)]
        rows = [[t.id, t.title, m, *(_fmt(r.scores[t.id]) for r in results)]
                for t, m in zip(tasks, maxima)]
        rows.append(["total", "", f"{results[0].max:g}", *(f"{r.total:g}" for r in results)])
        left = 2
    else:
        header = ["submission", *(t.id for t in tasks), "total", "max"]
        rows = [["max", *maxima, "", f"{results[0].max:g}"]]
        rows += [[r.name, *(_fmt(r.scores[t.id]) for t in tasks), f"{r.total:g}", f"{r.max:g}"]
                 for r in results]
        left = 1
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(f"{c:<{w}}" if i < left else f"{c:>{w}}"
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]
    for r in results:
        if r.errors:
            out.append(f"{r.name}: " + "; ".join(r.errors))
        if r.flags:
            more = f"; … and {len(r.flags) - 3} more" if len(r.flags) > 3 else ""
            out.append(f"{r.name}: FLAGGED: " + "; ".join(map(str, r.flags[:3])) + more)
    if verbose:
        for r in results:
            lost = [s for s in r.scores.values()
                    if s.points is not None and s.points < s.task.points]
            out.append(f"\n{r.name}: {r.total:g}/{r.max:g} ({r.seconds:g} s)"
                       + ("" if lost else ", nothing lost"))
            for s in lost:
                out.append(f"  {s.task.id} {s.points:g}/{s.task.points:g} {s.task.title}")
                reasons = grouped(s.reasons)
                for reason in reasons[:6]:
                    out.append(f"    {reason.splitlines()[0] if reason else ''}")
                if len(reasons) > 6:
                    out.append(f"    … and {len(reasons) - 6} more")
    return "\n".join(out)


def write_csv(results: Sequence[SubmissionResult], path: str | os.PathLike) -> Path:
    """One row per submission: submission, a column per task (registry order; empty for a task
    graded by hand), total, max, flags (what the scan found, '; '-separated). Written to a
    temporary file and renamed into place."""
    tasks = [s.task for s in results[0].scores.values()] if results else []
    text = table_text(columns(tasks), (csv_row(r, tasks) for r in results))
    return atomic_write(path, lambda f: f.write(text), text=True)
