"""The student edition ("hand-out") of the course, generated from the instructor's checkout.

    from scratchnet.coursework.handout import write_handout
    write_handout("build/student")                  # every task blanked: the student edition
    write_handout("/tmp/one", blank={"T04.4"})      # only T04.4 blanked, other solutions kept

What OUT holds: `scratchnet/` with each SOLUTION region of a blanked task replaced by a stub that
raises NotImplementedError with the task's message, every FAST PATH region (and every module only
fast paths use, FAST_PATH_MODULES) deleted and the other marker lines dropped; `notebooks/` with
outputs cleared, the solution cells of blanked tasks replaced by nbgrader's stubs, hidden tests
removed (nbgrader metadata kept) and the cells that show or time the fast paths left out
(`instructor_only`); `tests/tasks/`;
pyproject.toml, environment.yml, .gitignore, a student Makefile and README.md. The output depends
only on the input (sorted traversal, no timestamps), is built beside OUT and renamed into place,
and replaces OUT only when OUT is empty or a previous hand-out (it holds `.scratchnet-handout`).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..files import current_umask
from .regions import (
    MarkerError,
    blank_python,
    clear_hidden_tests,
    clear_solution,
    has_solution_region,
    strip_solution_markers,
    stub_lines,
)
from .tasks import NOTEBOOKS, TASKS, Task

MARKER_FILE = ".scratchnet-handout"
TOP_FILES = ("pyproject.toml", "environment.yml", ".gitignore")
# what only the instructor uses: nbval's settings; nbgrader (its JupyterLab extension would
# greet students with "No nbgrader_config.py file found"); playwright (the browser tests),
# django-static-mathjax (the offline site, `make site`) and copydetect (the grader's similarity
# report)
INSTRUCTOR_FILES = {"sanitize.cfg"}
INSTRUCTOR_REQUIREMENTS = {"nbgrader", "playwright", "django-static-mathjax", "copydetect"}
# package modules that only the fast paths use: the student edition has no fast paths
FAST_PATH_MODULES = {"scratchnet/winograd.py"}
# a requirement's line in pyproject.toml ('    "name>=1,<2",  # why') or environment.yml
# ('      - name>=1'): the name, then a version, marker or extras, or the end of the entry
_REQUIREMENT = re.compile(r'^\s*(?:"|-\s+)([A-Za-z0-9][A-Za-z0-9._-]*)(?=[\s"<>=!~;\[,]|$)')
TEMPLATE = Path(__file__).with_name("student_readme.md")
DEFAULT_TORCH = "torch==2.13.0"
_SKIP_DIRS = {"__pycache__", "build", "dist", "runs"}  # runs: a sweep's outputs
_SKIP_SUFFIXES = (".pyc", ".pyo")
_GRADE_ID = re.compile(r"^T(\d{2})_(\d+)(?![0-9])")


@dataclass(frozen=True)
class Handout:
    """What `make_handout` wrote."""
    path: Path
    blanked: tuple[str, ...]     # ids of the tasks blanked
    stubs: int                   # package regions replaced by a stub
    files: int                   # package files holding a stub
    notebooks: int
    cleared_cells: int           # notebook solution cells cleared

    def summary(self) -> str:
        return (f"{_count(self.stubs, 'task stub')} in {_count(self.files, 'package file')}, "
                f"{_count(self.notebooks, 'notebook')} "
                f"({_count(self.cleared_cells, 'solution cell')} cleared)")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def default_source() -> Path:
    """The checkout this package runs from: the parent of `scratchnet/`, holding pyproject.toml."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        raise FileNotFoundError(f"{root} holds no pyproject.toml: scratchnet is not running from "
                                "the instructor's checkout; pass its folder as source (--source)")
    return root


def write_handout(out: str | os.PathLike, source: str | os.PathLike | None = None,
                  blank: Collection[str] | None = None) -> Path:
    """Write the student edition of `source` (default: this checkout) into `out`; `blank` = the
    ids of the tasks to blank (default: all). Returns `out`."""
    return make_handout(out, source, blank).path


def make_handout(out: str | os.PathLike, source: str | os.PathLike | None = None,
                 blank: Collection[str] | None = None, *,
                 tasks: Sequence[Task] | None = None) -> Handout:
    """`write_handout`, returning what was written; `tasks` replaces the registry (for tests)."""
    tasks = TASKS if tasks is None else tasks
    source = default_source() if source is None else Path(source).absolute()
    out = Path(out).absolute()
    by_id = {t.id: t for t in tasks}
    if blank is None:
        blank_ids = set(by_id)
    else:
        blank_ids = {blank} if isinstance(blank, str) else set(blank)
        unknown = sorted(blank_ids - set(by_id))
        if unknown:
            raise ValueError(f"no task {', '.join(unknown)}; tasks: {', '.join(by_id)}")
    _check_places(source, out)

    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        result = _build(stage, source, tasks, blank_ids)
        stage.chmod(0o777 & ~current_umask())
        _replace(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return Handout(out, *result)


def _check_places(source: Path, out: Path) -> None:
    for needed in ("pyproject.toml", "scratchnet", "notebooks"):
        if not (source / needed).exists():
            raise FileNotFoundError(f"{source} is not a scratchnet checkout: it has no {needed}")
    inputs = [source / "scratchnet", source / "notebooks", source / "tests"]
    if out == source or out in source.parents or any(out == p or p in out.parents
                                                      for p in inputs):
        raise ValueError(f"{out} overlaps the source checkout's files; write the hand-out "
                         "elsewhere (e.g. build/student)")
    if out.exists() or out.is_symlink():
        if not out.is_dir() or out.is_symlink():
            raise FileExistsError(f"{out} exists and is not a folder")
        if any(out.iterdir()) and not (out / MARKER_FILE).is_file():
            raise FileExistsError(f"{out} is not empty and is not a previous hand-out (it has no "
                                  f"{MARKER_FILE}); choose another folder")


def _replace(stage: Path, out: Path) -> None:
    """Move `stage` to `out`, replacing a previous hand-out (or an empty folder) there."""
    if not out.exists():
        os.rename(stage, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    os.rmdir(old)
    os.rename(out, old)
    try:
        os.rename(stage, out)
    except BaseException:
        os.rename(old, out)
        raise
    shutil.rmtree(old)


def _files(root: Path) -> list[Path]:
    """Files under `root`, relative and sorted, without hidden files, caches and build folders."""
    found: list[Path] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS
                         and not d.endswith(".egg-info"))
        found += [Path(folder, n).relative_to(root) for n in names
                  if not n.startswith(".") and not n.endswith(_SKIP_SUFFIXES)]
    return sorted(found, key=lambda p: p.as_posix())


def _write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8", newline="")
    else:
        path.write_bytes(data)


def _build(stage: Path, source: Path, tasks: Sequence[Task], blank: set[str]
           ) -> tuple[tuple[str, ...], int, int, int, int]:
    claims: dict[str, list[Task]] = {}
    for t in tasks:
        for where in t.where:
            claims.setdefault(where, []).append(t)

    # the package
    stubs, stubbed_files, seen = 0, 0, set()
    for rel in _files(source / "scratchnet"):
        name = f"scratchnet/{rel.as_posix()}"
        src = source / "scratchnet" / rel
        if name in FAST_PATH_MODULES:
            continue
        if rel.suffix != ".py":
            _write(stage / name, src.read_bytes())
            continue
        text = src.read_text(encoding="utf-8")
        new, regions = blank_python(text, name, claims, blank)
        n = sum(t.id in blank for t, _ in regions)
        stubs, stubbed_files = stubs + n, stubbed_files + (n > 0)
        seen |= {where for _, where in regions}
        try:
            compile(new, name, "exec", dont_inherit=True)
        except SyntaxError as e:
            raise MarkerError(f"{name}:{e.lineno}: the student edition of this file does not "
                              f"compile ({e.msg}); check its markers") from None
        _write(stage / name, new)
    missing = [(t.id, w) for t in tasks if t.kind == "code" and t.id in blank
               for w in t.where if w not in seen]
    if missing:
        raise MarkerError("no '### BEGIN SOLUTION' region for " + "; ".join(
            f"{task_id} in {where}" for task_id, where in missing))

    # the notebooks
    notebooks = cleared = 0
    for rel in _files(source / "notebooks"):
        src = source / "notebooks" / rel
        if rel.name in INSTRUCTOR_FILES:
            continue
        if rel.suffix != ".ipynb":
            _write(stage / "notebooks" / rel, src.read_bytes())
            continue
        nb = json.loads(src.read_text(encoding="utf-8"))
        n = handout_notebook(nb, f"notebooks/{rel.as_posix()}", blank, {t.id for t in tasks})
        _write(stage / "notebooks" / rel, notebook_json(nb))
        notebooks, cleared = notebooks + 1, cleared + n

    # the task tests, top-level files, the student Makefile and README
    if (source / "tests" / "tasks").is_dir():
        for rel in _files(source / "tests" / "tasks"):
            _write(stage / "tests" / "tasks" / rel, (source / "tests" / "tasks" / rel).read_bytes())
    for name in TOP_FILES:
        if (source / name).is_file():
            _write(stage / name, without_instructor_tools((source / name).read_text("utf-8")))
    torch = torch_requirement(source)
    _write(stage / "Makefile", student_makefile(torch))
    _write(stage / "README.md", student_readme([t for t in tasks if t.id in blank], torch))
    blanked = tuple(t.id for t in tasks if t.id in blank)
    _write(stage / MARKER_FILE, "scratchnet student edition, written by "
           "`python -m scratchnet handout`; a new hand-out replaces this folder.\n"
           f"blanked: {' '.join(blanked)}\n")
    return blanked, stubs, stubbed_files, notebooks, cleared


def without_instructor_tools(text: str) -> str:
    """A dependency file (pyproject.toml, environment.yml) without the lines that list an
    instructor-only requirement (INSTRUCTOR_REQUIREMENTS, whatever its version)."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if requirement_name(line) not in INSTRUCTOR_REQUIREMENTS)


def requirement_name(line: str) -> str | None:
    """The normalised name of the requirement a dependency file's line lists
    ('    "Django_Static.MathJax>=3.2,<4",' → 'django-static-mathjax'), else None."""
    m = _REQUIREMENT.match(line)
    return re.sub(r"[-_.]+", "-", m.group(1)).lower() if m else None


# ---- notebooks --------------------------------------------------------------------------------

def notebook_json(nb: dict) -> str:
    """A notebook as nbformat writes it."""
    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False,
                      separators=(",", ": ")) + "\n"


def cell_task(grade_id: str | None) -> str | None:
    """The task a notebook cell's grade_id names: 'T04_7_solution' / 'T04_5b' / 'T04_9' →
    'T04.7' / 'T04.5' / 'T04.9'; None for ids that name no task (and for no id)."""
    m = _GRADE_ID.match(grade_id or "")
    return f"T{m.group(1)}.{m.group(2)}" if m else None


def instructor_only(cell: dict) -> bool:
    """Whether a notebook cell shows or times the instructor's fast paths, which the student
    edition does not have (cell metadata `"scratchnet": {"edition": "instructor"}`)."""
    return cell.get("metadata", {}).get("scratchnet", {}).get("edition") == "instructor"


def handout_notebook(nb: dict, name: str, blank: Collection[str],
                     known: Collection[str]) -> int:
    """The student edition of a notebook, in place (nbgrader's ClearSolutions, ClearHiddenTests,
    ClearOutput; instructor-only cells left out): returns the number of solution cells
    cleared."""
    cleared = 0
    for i, cell in enumerate(nb.get("cells", [])):
        if instructor_only(cell) and cell.get("metadata", {}).get("nbgrader"):
            raise MarkerError(f"{name}, cell {i}: a graded or solution cell cannot be "
                              "instructor-only")
        where = f"{name}, cell {i}" + (f" ({cell['id']})" if "id" in cell else "")
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        meta = cell.get("metadata", {}).get("nbgrader", {})
        source, removed = clear_hidden_tests(source, where)
        if removed and not meta.get("grade"):
            raise MarkerError(f"{where}: hidden tests in a cell that is not a grade cell "
                              "(nbgrader metadata grade: true)")
        if meta.get("solution"):
            task_id = cell_task(str(meta.get("grade_id", "")))
            if task_id is None or task_id not in known:
                raise MarkerError(f"{where}: solution cell with grade_id "
                                  f"{meta.get('grade_id')!r} names no task of the registry")
            if task_id in blank:
                source, _ = clear_solution(source, cell.get("cell_type") == "code", where)
                cleared += 1
            else:
                source = strip_solution_markers(source, where)
        elif has_solution_region(source):
            raise MarkerError(f"{where}: a solution region in a cell that is not a solution cell "
                              "(nbgrader metadata solution: true)")
        cell["source"] = source.splitlines(keepends=True)
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
            for key in ("collapsed", "scrolled"):
                cell.get("metadata", {}).pop(key, None)
    nb["cells"] = [cell for cell in nb.get("cells", []) if not instructor_only(cell)]
    nb.get("metadata", {}).pop("celltoolbar", None)
    return cleared


# ---- Makefile and README ----------------------------------------------------------------------

def torch_requirement(source: Path) -> str:
    """The torch pin of the checkout's Makefile (`TORCH ?= torch==…`)."""
    makefile = source / "Makefile"
    if makefile.is_file():
        text = makefile.read_text(encoding="utf-8")
        m = re.search(r"^TORCH\s*\?=\s*(\S+)\s*$", text, re.MULTILINE)
        if m:
            return m.group(1)
    return DEFAULT_TORCH


def student_makefile(torch: str = DEFAULT_TORCH) -> str:
    return f"""\
# make setup — create .venv: torch first, then this project and its tools
# make lab   — open the notebooks in JupyterLab
# make test  — run the tests of every task (tests/tasks)
# make check TASK=T04_4 — the tests of one task (TASK=T04: those of notebook 04)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# on a GPU box pip takes the CUDA build of this version
TORCH  ?= {torch}
TASK   ?=

.PHONY: setup lab test check clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
\t$(PYTHON) -m venv $(VENV)
\t$(BIN)/pip install -q "$(TORCH)"
\t$(BIN)/pip install -q -e ".[dev]"
\t$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
\t$(BIN)/python -c "import matplotlib.pyplot"  # builds the font cache once, not inside a notebook
\ttouch $@

lab: setup
\t$(BIN)/jupyter lab notebooks/

test: setup
\t$(BIN)/python -m pytest tests/tasks -p no:cacheprovider

check: setup
\t@test -n "$(TASK)" || (echo "usage: make check TASK=T04_4 (or TASK=T04)"; exit 2)
\t$(BIN)/python -m pytest tests/tasks -p no:cacheprovider -m "$(TASK)"

clean:
\trm -rf build .pytest_cache .hypothesis
"""


def _points(p: float) -> str:
    return f"{p:g}"


def _where(where: str) -> str:
    path, _, qualname = where.partition(":")
    return f"`{path}`: `{qualname}`"


def task_table(tasks: Iterable[Task]) -> str:
    """Markdown table of the code tasks: id, title, points, where, notebook section."""
    rows = ["| task | what you write | points | file: function | derivation |",
            "| --- | --- | ---: | --- | --- |"]
    for t in tasks:
        if t.kind == "code":
            rows.append(f"| {t.id} | {t.title} | {_points(t.points)} | "
                        f"{'<br>'.join(_where(w) for w in t.where)} | "
                        f"`{t.notebook}` {t.section} |")
    return "\n".join(rows)


def notebook_table(tasks: Sequence[Task]) -> str:
    """Markdown table of each notebook's tasks: counts by kind and points."""
    rows = ["| notebook | package code | checks | exercises | written | points |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for number, stem in NOTEBOOKS.items():
        mine = [t for t in tasks if t.number == number]
        if not mine:
            continue
        counts = [sum(t.kind == k for t in mine) for k in ("code", "check", "exercise", "written")]
        rows.append(f"| `{stem}` | {' | '.join(map(str, counts))} | "
                    f"{_points(sum(t.points for t in mine))} |")
    rows.append(f"| **all** | {sum(t.kind == 'code' for t in tasks)} | "
                f"{sum(t.kind == 'check' for t in tasks)} | "
                f"{sum(t.kind == 'exercise' for t in tasks)} | "
                f"{sum(t.kind == 'written' for t in tasks)} | "
                f"**{_points(sum(t.points for t in tasks))}** |")
    return "\n".join(rows)


def student_readme(tasks: Sequence[Task], torch: str = DEFAULT_TORCH) -> str:
    """README.md of the hand-out, from student_readme.md: {{TORCH}}, {{CODE_TASKS}},
    {{NOTEBOOK_TASKS}} and {{EXAMPLE_STUB}} (the first code task's stub) filled in."""
    text = TEMPLATE.read_text(encoding="utf-8")
    code = [t for t in tasks if t.kind == "code"]
    example = code[0] if code else None
    fill = {
        "{{TORCH}}": torch,
        "{{CODE_TASKS}}": task_table(tasks) if code else "(no package task is blank in this "
                                                          "edition)",
        "{{NOTEBOOK_TASKS}}": notebook_table(tasks),
        "{{EXAMPLE_STUB}}": "\n".join(stub_lines(example, example.where[0].partition(":")[2],
                                                   " " * 8) if example else []),
    }
    for key, value in fill.items():
        text = text.replace(key, value)
    return text
