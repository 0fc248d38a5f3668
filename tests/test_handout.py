"""The student edition (`python -m scratchnet handout`): marker regions, stubs, fast-path deletion,
notebooks cleared the nbgrader way, determinism, and no solution leaking into the hand-out."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scratchnet import cli
from scratchnet.coursework import regions
from scratchnet.coursework.handout import (
    INSTRUCTOR_REQUIREMENTS,
    MARKER_FILE,
    _files,
    cell_task,
    make_handout,
    requirement_name,
    write_handout,
)
from scratchnet.coursework.regions import (
    FAST_PATH,
    SOLUTION,
    MarkerError,
    blank_python,
    clear_hidden_tests,
    clear_solution,
    find_regions,
    strip_markers,
)
from scratchnet.coursework.tasks import TASKS, Task, task
from scratchnet.show import source_markdown

ROOT = Path(__file__).resolve().parents[1]
B, E = "### BEGIN SOLUTION", "### END SOLUTION"
BF, EF = "### BEGIN FAST PATH", "### END FAST PATH"
BH, EH = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"

# ---- a small synthetic checkout ----------------------------------------------------------------

TOY_TASKS = (
    Task("T01.1", "Scale forward", 2, "code", "§2", "return a·x",
         ("scratchnet/toy.py:Scale.forward",)),
    Task("T01.2", "Helpers", 1, "code", "§3", "write both helpers",
         ("scratchnet/toy.py:double", "scratchnet/sub/helpers.py:triple")),
    Task("T01.3", "Exercise: squares", 1, "exercise", "Exercises"),
    Task("T01.4", "Written: why", 1, "written", "Exercises"),
    Task("T01.5", "Check", 1, "check", "§4", depends=("T01.1",)),
)

TOY_PY = f'''\
"""A toy module."""
import math


class Scale:
    def __init__(self, a):
        self.a = a

    def forward(self, x):
        """x → a·x."""
        {BF}
        if isinstance(x, float):
            return math.fsum([self.a * x])
        {EF}
        {B}
        scaled_value = self.a * x
        return scaled_value
        {E}


def double(x):
    {B}
    return x + x  # the doubling
    {E}


{BF}
def fast_double(x):
    return 2 * x
{EF}


def untouched(x):
    return x - 1
'''

HELPERS_PY = f'''\
def triple(x):
    y = x
    {B}
    for _ in range(2):
        y = y + x
    {E}
    return y
'''


def _notebook(cells: list[dict]) -> dict:
    return {"cells": cells, "metadata": {"celltoolbar": "Create Assignment",
                                         "kernelspec": {"name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


def _cell(kind: str, source: str, nbgrader: dict | None = None, n: int = 0) -> dict:
    cell = {"cell_type": kind, "id": f"c{n}", "metadata": {}, "source": source}
    if nbgrader is not None:
        cell["metadata"]["nbgrader"] = {"schema_version": 3, "task": False, **nbgrader}
    if kind == "code":
        cell["execution_count"] = n + 1
        cell["metadata"]["scrolled"] = True
        cell["outputs"] = [{"name": "stdout", "output_type": "stream",
                            "text": ["printed_output_value 42\n"]}]
    return cell


TOY_NB = _notebook([
    _cell("markdown", "# 01 · Toy\n\nSquares of numbers.", n=0),
    _cell("code", "import scratchnet.toy as toy\nprint(toy.double(2))", n=1),
    _cell("code", f"def squares(n):\n    \"\"\"0², 1², …\"\"\"\n    {B}\n"
                  f"    return [k_value * k_value for k_value in range(n)]\n    {E}",
          {"grade": False, "grade_id": "T01_3_solution", "locked": False, "solution": True}, n=2),
    _cell("code", f"assert squares(3) == [0, 1, 4]\n{BH}\nassert squares(5)[-1] == 16\n{EH}",
          {"grade": True, "grade_id": "T01_3", "locked": True, "points": 1, "solution": False},
          n=3),
    _cell("code", "secret_solution_cell = sorted(set('whole cell answer'))",
          {"grade": False, "grade_id": "T01_3_solution_b", "locked": False, "solution": True},
          n=4),
    _cell("markdown", "Because the model answer is long enough to leak.",
          {"grade": True, "grade_id": "T01_4", "locked": False, "points": 1, "solution": True},
          n=5),
])


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    files = {
        "pyproject.toml": ("[project]\nname = 'toy'\ndev = [\n    \"pytest\",\n    \"nbgrader\",\n"
                           "    \"playwright\",\n    \"pytest-timeout\",\n"
                           "    \"django-static-mathjax>=3.2,<4\",  # the site's MathJax\n]\n"),
        "Makefile": "TORCH  ?= torch==9.9.9\n",
        "environment.yml": ("name: toy\n      - nbval\n      - nbgrader\n      - playwright\n"
                            "      - django-static-mathjax>=3.2,<4\n      - -e .\n"),
        ".gitignore": "/data/\n",
        "README.md": "the instructor's README\n",
        "scratchnet/__init__.py": "",
        "scratchnet/toy.py": TOY_PY,
        "scratchnet/sub/__init__.py": "",
        "scratchnet/sub/helpers.py": HELPERS_PY,
        "scratchnet/weights/w.pth": "binary",
        "scratchnet/__pycache__/toy.cpython-311.pyc": "junk",
        "notebooks/01_toy.ipynb": json.dumps(TOY_NB),
        "notebooks/sanitize.cfg": "[x]\n",
        "notebooks/.ipynb_checkpoints/01_toy-checkpoint.ipynb": "{}",
        "tests/tasks/conftest.py": "# the task tests' setup\n",
        "tests/tasks/test_toy.py": "def test_toy():\n    pass\n",
        "tests/test_fast_paths.py": "# not for students\n",
        "tests/conftest.py": "# not for students\n",
    }
    for name, text in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text, encoding="utf-8")
    return src


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _source(nb_cell: dict) -> str:
    s = nb_cell["source"]
    return "".join(s) if isinstance(s, list) else s


# ---- regions ------------------------------------------------------------------------------------

def test_regions_are_found_with_their_kind_lines_and_indent():
    found = find_regions(TOY_PY, "toy.py")
    assert [(r.kind, r.indent) for r in found] == [
        (FAST_PATH, " " * 8), (SOLUTION, " " * 8), (SOLUTION, " " * 4), (FAST_PATH, "")]
    lines = TOY_PY.split("\n")
    assert [line.strip() for line in found[1].body(lines)] == [
        "scaled_value = self.a * x", "return scaled_value"]


@pytest.mark.parametrize("text, message", [
    (f"{B}\n{B}\n{E}\n{E}\n", (r"x\.py:2: '### BEGIN SOLUTION' inside the SOLUTION region "
                               "opened at line 1; regions cannot be nested")),
    (f"{B}\n{BF}\n{EF}\n{E}\n", r"x\.py:2: .*cannot be nested"),
    (f"a = 1\n{B}\nb = 2\n", r"x\.py:2: '### BEGIN SOLUTION' has no '### END SOLUTION'"),
    (f"{E}\n", r"x\.py:1: '### END SOLUTION' without a BEGIN"),
    (f"{B}\n{EF}\n", r"x\.py:2: '### END FAST PATH' closes the SOLUTION region opened at line 1"),
    (f"def f():\n    {B}\n    pass\n{E}\n", r"x\.py:4: .*not indented like its BEGIN at line 2"),
    ("## BEGIN SOLUTION\n", r"x\.py:1: .*looks like a marker but is not one"),
    ("    ### end solution\n", r"x\.py:1: .*looks like a marker"),
])
def test_bad_markers_are_clear_errors(text, message):
    with pytest.raises(MarkerError, match=message):
        find_regions(text, "x.py")


def test_prose_that_mentions_a_marker_is_not_one():
    text = 'NOTE = "### BEGIN SOLUTION"\n# regions open with a BEGIN SOLUTION line\n'
    assert find_regions(text, "x.py") == []


def test_strip_markers_keeps_the_code_between():
    text = f"def f(x):\n    {B}\n    y = x\n    {E}\n    {BF}\n    z = 1\n    {EF}\n    return y\n"
    assert strip_markers(text) == "def f(x):\n    y = x\n    z = 1\n    return y\n"
    assert strip_markers("no markers\n") == "no markers\n"


def _claims(tasks=TOY_TASKS):
    claims: dict[str, list[Task]] = {}
    for t in tasks:
        for w in t.where:
            claims.setdefault(w, []).append(t)
    return claims


def _run(code: str) -> dict:
    """The namespace of a generated module, run."""
    namespace: dict = {}
    exec(compile(code, "<generated>", "exec"), namespace)  # noqa: S102
    return namespace


def test_stubs_replace_solutions_and_fast_paths_vanish():
    new, seen = blank_python(TOY_PY, "scratchnet/toy.py", _claims(), {"T01.1", "T01.2"})
    t1, t2 = TOY_TASKS[0], TOY_TASKS[1]
    assert [(t.id, w) for t, w in seen] == [("T01.1", "scratchnet/toy.py:Scale.forward"),
                                            ("T01.2", "scratchnet/toy.py:double")]
    assert f'''\
    def forward(self, x):
        """x → a·x."""
        # TODO T01.1: return a·x
        raise NotImplementedError("{t1.stub_message("Scale.forward")}")


def double(x):
    # TODO T01.2: write both helpers
    raise NotImplementedError("{t2.stub_message("double")}")


def untouched(x):
''' in new
    assert "fast_double" not in new and "fsum" not in new and "###" not in new
    namespace = _run(new)
    with pytest.raises(NotImplementedError, match=r"^T01\.1 Scale\.forward — return a·x; "
                                                  r"derivation: notebooks/01_"):
        namespace["Scale"](2).forward(3.0)


def test_unblanked_solutions_keep_their_code_without_markers():
    new, _ = blank_python(TOY_PY, "scratchnet/toy.py", _claims(), {"T01.2"})
    assert "scaled_value = self.a * x\n        return scaled_value\n" in new
    assert "###" not in new and "fsum" not in new
    namespace = _run(new)
    assert namespace["Scale"](2).forward(3.0) == 6.0          # the textbook path, not the fast one


def test_a_stub_in_a_nested_block_and_a_stub_message_with_quotes():
    weird = Task("T10.9", "q", 1, "code", "§1", 'say "hi" \\ bye', ("scratchnet/w.py:f",))
    text = f"def f(x):\n    if x:\n        {B}\n        return 1\n        {E}\n    return 0\n"
    new, _ = blank_python(text, "scratchnet/w.py", _claims([weird]), {"T10.9"})
    namespace = _run(new)
    assert namespace["f"](0) == 0
    with pytest.raises(NotImplementedError) as error:
        namespace["f"](1)
    assert str(error.value) == weird.stub_message("f")


@pytest.mark.parametrize("text, where, message", [
    (f"x = 1\n{B}\ny = 2\n{E}\n", (), r"w\.py:2: a SOLUTION region must hold code inside"),
    (f"def g():\n    {B}\n    return 2\n    {E}\n", (), r"w\.py:2: .* in g is claimed by no task"),
    (f"def f():\n    {B}\n    return 2\n    {E}\n", ("T10.8", "T10.9"),
     r"claimed by T10\.8, T10\.9; exactly one task's `where` must list 'scratchnet/w\.py:f'"),
    (f"def f():\n    {BH}\n    return 2\n    {EH}\n", (), r"w\.py:2: hidden-test markers"),
])
def test_regions_without_exactly_one_task_are_refused(text, where, message):
    tasks = [Task(i, "t", 1, "code", "§1", "do it", ("scratchnet/w.py:f",)) for i in where]
    with pytest.raises(MarkerError, match=message):
        blank_python(text, "scratchnet/w.py", _claims(tasks), {t.id for t in tasks})


def test_a_region_in_a_nested_function_belongs_to_the_claimed_outer_one():
    t = Task("T10.9", "t", 1, "code", "§1", "do it", ("scratchnet/w.py:C.f",))
    text = f"class C:\n    def f(self):\n        def inner():\n            {B}\n            " \
           f"return 1\n            {E}\n        return inner()\n"
    new, seen = blank_python(text, "scratchnet/w.py", _claims([t]), {"T10.9"})
    assert seen == [(t, "scratchnet/w.py:C.f")] and "T10.9 C.f —" in new


# ---- notebook cells -------------------------------------------------------------------------

def test_notebook_cells_follow_nbgrader():
    src = f"def f():\n    {B}\n    return 1\n    {E}\n    pass"
    assert clear_solution(src, code=True) == (
        "def f():\n    # YOUR CODE HERE\n    raise NotImplementedError()\n    pass", True)
    assert clear_solution("x = 1", code=True) == (
        "# YOUR CODE HERE\nraise NotImplementedError()", False)
    assert clear_solution("an answer", code=False) == ("YOUR ANSWER HERE", False)
    assert clear_hidden_tests(f"a\n# {BH}\nb\n# {EH}\nc") == ("a\nc", True)
    with pytest.raises(MarkerError, match="nested"):
        clear_solution(f"{B}\n{B}\n{E}", code=True)
    with pytest.raises(MarkerError, match="no 'END HIDDEN TESTS'"):
        clear_hidden_tests(f"{BH}\nx")
    assert cell_task("T04_7_solution") == "T04.7" and cell_task("T04_5b") == "T04.5"
    assert cell_task("T04_9") == "T04.9" and cell_task("T04_10_solution_b") == "T04.10"
    assert cell_task("welcome") is None


# ---- the toy hand-out --------------------------------------------------------------------------

def test_toy_handout(toy, tmp_path):
    out = tmp_path / "student"
    handout = make_handout(out, toy, tasks=TOY_TASKS)
    assert (handout.stubs, handout.files, handout.notebooks, handout.cleared_cells) == (3, 2, 1, 3)
    files = set(_tree(out))
    assert files == {
        ".gitignore", "Makefile", "README.md", MARKER_FILE, "environment.yml", "pyproject.toml",
        "notebooks/01_toy.ipynb", "scratchnet/__init__.py",
        "scratchnet/sub/__init__.py", "scratchnet/sub/helpers.py", "scratchnet/toy.py",
        "scratchnet/weights/w.pth", "tests/tasks/conftest.py", "tests/tasks/test_toy.py"}
    # students get no nbgrader (its Lab extension would ask them for a config), no nbval setup,
    # and neither the browser tests' playwright nor the offline site's MathJax
    assert (out / "pyproject.toml").read_text() == (
        "[project]\nname = 'toy'\ndev = [\n    \"pytest\",\n    \"pytest-timeout\",\n]\n")
    assert (out / "environment.yml").read_text() == "name: toy\n      - nbval\n      - -e .\n"
    helpers = (out / "scratchnet/sub/helpers.py").read_text()
    assert "raise NotImplementedError(\"T01.2 triple — write both helpers" in helpers
    assert "    return y\n" in helpers                                 # code after the region
    readme = (out / "README.md").read_text()
    assert "| T01.1 | Scale forward | 2 | `scratchnet/toy.py`: `Scale.forward` |" in readme
    assert "`scratchnet/toy.py`: `double`<br>`scratchnet/sub/helpers.py`: `triple`" in readme
    assert "torch==9.9.9" in readme and "{{" not in readme
    makefile = (out / "Makefile").read_text()
    assert "TORCH  ?= torch==9.9.9" in makefile and "pytest tests/tasks" in makefile

    nb = json.loads((out / "notebooks/01_toy.ipynb").read_text())
    assert "celltoolbar" not in nb["metadata"]
    cells = nb["cells"]
    for cell in cells:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
            assert "scrolled" not in cell["metadata"]
        assert cell["metadata"] == {k: v for k, v in TOY_NB["cells"][cells.index(cell)][
            "metadata"].items() if k != "scrolled"}                      # nbgrader kept
    assert _source(cells[2]) == ('def squares(n):\n    """0², 1², …"""\n    # YOUR CODE HERE\n'
                                 "    raise NotImplementedError()")
    assert _source(cells[3]) == "assert squares(3) == [0, 1, 4]"
    assert _source(cells[4]) == "# YOUR CODE HERE\nraise NotImplementedError()"
    assert _source(cells[5]) == "YOUR ANSWER HERE"
    assert _source(cells[1]) == _source(TOY_NB["cells"][1])
    assert isinstance(cells[1]["source"], list)


def test_toy_handout_of_one_task_keeps_the_other_solutions(toy, tmp_path):
    out = tmp_path / "one"
    handout = make_handout(out, toy, blank={"T01.1"}, tasks=TOY_TASKS)
    assert (handout.stubs, handout.cleared_cells, handout.blanked) == (1, 0, ("T01.1",))
    toy_py = (out / "scratchnet/toy.py").read_text()
    assert "T01.1 Scale.forward" in toy_py and "return x + x" in toy_py
    assert "fast_double" not in toy_py and "###" not in toy_py
    nb = json.loads((out / "notebooks/01_toy.ipynb").read_text())
    assert "return [k_value * k_value for k_value in range(n)]" in _source(nb["cells"][2])
    assert "SOLUTION" not in _source(nb["cells"][2])
    assert "squares(5)" not in _source(nb["cells"][3])                # hidden tests: always gone


def test_toy_handout_errors(toy, tmp_path):
    with pytest.raises(ValueError, match="no task T08.7"):
        make_handout(tmp_path / "x", toy, blank={"T08.7"}, tasks=TOY_TASKS)
    missing = TOY_TASKS + (
        Task("T01.9", "m", 1, "code", "§1", "m", ("scratchnet/toy.py:untouched",)),)
    with pytest.raises(MarkerError, match=r"no '### BEGIN SOLUTION' region for T01\.9 in "
                                          r"scratchnet/toy\.py:untouched"):
        make_handout(tmp_path / "x", toy, tasks=missing)
    broken = toy / "scratchnet/broken.py"
    broken.write_text(f"def only_fast():\n    {BF}\n    return 1\n    {EF}\n")
    with pytest.raises(MarkerError, match=r"scratchnet/broken\.py:.*does not compile"):
        make_handout(tmp_path / "x", toy, tasks=TOY_TASKS)
    broken.unlink()
    nb = json.loads((toy / "notebooks/01_toy.ipynb").read_text())
    nb["cells"][1]["source"] = f"{B}\nx = 1\n{E}"                       # not a solution cell
    (toy / "notebooks/01_toy.ipynb").write_text(json.dumps(nb))
    with pytest.raises(MarkerError, match=r"notebooks/01_toy\.ipynb, cell 1 \(c1\): a solution "
                                          "region in a cell that is not a solution cell"):
        make_handout(tmp_path / "x", toy, tasks=TOY_TASKS)
    assert not (tmp_path / "x").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_out_is_replaced_only_when_it_is_a_previous_handout(toy, tmp_path):
    out = tmp_path / "student"
    out.mkdir()
    make_handout(out, toy, tasks=TOY_TASKS)                            # an empty folder is fine
    (out / "scratchnet/stale.py").write_text("stale = 1\n")
    make_handout(out, toy, tasks=TOY_TASKS)                            # a previous hand-out
    assert not (out / "scratchnet/stale.py").exists()
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty and is not a previous hand-out"):
        make_handout(other, toy, tasks=TOY_TASKS)
    assert (other / "notes.txt").read_text() == "keep me"
    with pytest.raises(ValueError, match="overlaps the source"):
        make_handout(toy / "scratchnet" / "out", toy, tasks=TOY_TASKS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "src", "student"]


def test_show_source_strips_the_markers_and_leaves_out_fast_paths():
    def marked(x):
        ### BEGIN SOLUTION
        y = x + 1
        ### END SOLUTION
        ### BEGIN FAST PATH
        y = 2 * y
        ### END FAST PATH
        return y

    text = source_markdown(marked)
    assert "###" not in text and "    y = x + 1\n    return y" in text and "2 * y" not in text
    import scratchnet as sn

    assert "### BEGIN" not in source_markdown(sn.Linear.forward)


# ---- the real hand-out -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def student(tmp_path_factory) -> Path:
    return write_handout(tmp_path_factory.mktemp("handout") / "student", ROOT)


def test_the_handout_is_deterministic_and_clean(student, tmp_path):
    again = write_handout(tmp_path / "again", ROOT)
    first, second = _tree(student), _tree(again)
    assert first == second
    assert not [name for name in first if "__pycache__" in name or name.endswith((".pyc", ".pyo"))]
    assert {name.split("/")[0] for name in first} == {
        ".gitignore", MARKER_FILE, "Makefile", "README.md", "environment.yml", "notebooks",
        "pyproject.toml", "scratchnet", "tests"}
    assert {name.rsplit("/", 1)[0] for name in first if name.startswith("tests/")} <= {
        "tests/tasks"} | {n.rsplit("/", 1)[0] for n in first if n.startswith("tests/tasks/")}
    assert "scratchnet/weights/course_denoiser.pth" in first
    # tests/tasks tells the editions apart by "### BEGIN SOLUTION" in the package's own files
    assert not [name for name, data in first.items() if name.startswith("scratchnet/")
                and "/coursework/" not in name and b"BEGIN SOLUTION" in data]
    for name, data in first.items():
        if name.endswith(".py"):
            compile(data.decode("utf-8"), name, "exec", dont_inherit=True)
            assert not find_regions(data.decode("utf-8"), name), name


def test_every_code_task_is_a_stub(student):
    for t in TASKS:
        for where in t.where:
            path, _, qualname = where.partition(":")
            assert t.stub_message(qualname) in (student / path).read_text(encoding="utf-8")
    readme = (student / "README.md").read_text(encoding="utf-8")
    for t in TASKS:
        if t.kind == "code":
            assert f"| {t.id} | {t.title} |" in readme


def test_the_handout_installs_only_what_a_student_needs(student):
    """The student's pyproject.toml and environment.yml list the instructor's requirements but
    nbgrader, playwright (the browser tests) and django-static-mathjax (the offline site)."""
    for name in ("pyproject.toml", "environment.yml"):
        ours, theirs = ({requirement_name(line) for line in (folder / name).read_text(
            encoding="utf-8").splitlines()} - {None} for folder in (ROOT, student))
        assert INSTRUCTOR_REQUIREMENTS <= ours, name                     # the instructor's keep them
        assert theirs == ours - INSTRUCTOR_REQUIREMENTS, name
        assert {"torch", "pytest", "jupyterlab", "nbval"} <= theirs, name


# ---- no solution in the hand-out ---------------------------------------------------------------
# An answer's line that the untouched hand-out repeats gives the task away. What counts as such a
# line, and why: test_no_solution_in_the_handout's docstring.

MIN_CHARS = 16     # shorter lines (`else:`, `return y`, `x = module(x)`) cannot be told apart
MIN_WORDS = 4      # a written answer's line: a phrase, not a lone symbol or formula
# Lines an answer shares, on purpose, with code the hand-out must give, each with its reason.
SHARED = {
    # T03.1's first line is also a line of _calculate_correct_fan, the helper T03.2 must call
    "fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)",
}
_COMMENT = re.compile(r"\s+#(?:\s.*)?$")
_STRING = re.compile(r"\"[^\"]*\"|'[^']*'")
_INERT = re.compile(r"[\w\s.,:=\[\]]*")         # names, attributes, subscripts, `=`, `,`, `:`


def _normalise(line: str) -> str:
    """`line` without its indentation and a trailing comment: 'a = √3·std  # why' → 'a = √3·std'."""
    return _COMMENT.sub("", line.strip())


def _telling(line: str, code: bool) -> bool:
    """Whether an answer's normalised line could give the answer away."""
    if len(line) < MIN_CHARS or line.startswith("#"):
        return False
    if not code:
        return len(line.split()) >= MIN_WORDS
    bare = _STRING.sub("_", line)
    return not (_INERT.fullmatch(bare) and "==" not in bare)


def _between(text: str, begin: str, end: str) -> list[tuple[int, str]]:
    """(1-based number, line) of a cell's lines between nbgrader's delimiters: after a line that
    contains `begin`, up to one that contains `end`."""
    found, inside = [], False
    for n, line in enumerate(text.split("\n"), 1):
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif inside:
            found.append((n, line))
    return found


def _answer_lines(source: Path) -> dict[str, str]:
    """Every telling line of a checkout's answers → where it is: its package's SOLUTION regions
    and its notebooks' solution cells (their BEGIN/END SOLUTION regions, or the whole cell when
    it has none; markdown answers too)."""
    found: dict[str, str] = {}

    def add(lines: list[tuple[int, str]], code: bool, where: str) -> None:
        for n, line in lines:
            if _telling(line := _normalise(line), code):
                found.setdefault(line, where.format(n))

    for rel in _files(source / "scratchnet"):
        name = f"scratchnet/{rel.as_posix()}"
        if rel.suffix == ".py":
            text = (source / name).read_text(encoding="utf-8")
            lines = text.split("\n")
            for r in find_regions(text, name):
                if r.kind == SOLUTION:
                    add([(i + 1, lines[i]) for i in range(r.begin + 1, r.end)], True,
                        f"{name}:{{}}")
    for path in sorted((source / "notebooks").glob("*.ipynb")):
        for i, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
            text, code = _source(cell), cell["cell_type"] == "code"
            if cell["metadata"].get("nbgrader", {}).get("solution"):
                add(_between(text, "BEGIN SOLUTION", "END SOLUTION")
                    if regions.has_solution_region(text)
                    else list(enumerate(text.split("\n"), 1)), code,
                    f"notebooks/{path.name}, cell {i}, line {{}}")
    return found


def _handout_lines(out: Path) -> list[tuple[str, str]]:
    """(where, normalised line) for every line of the hand-out's text files: a notebook's by
    cell (source and outputs, should any be left), the others' by line number."""
    found: list[tuple[str, str]] = []
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        name, data = path.relative_to(out).as_posix(), path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if "\0" in text:
            continue
        if path.suffix != ".ipynb":
            found += [(f"{name}:{n}", _normalise(line))
                      for n, line in enumerate(text.split("\n"), 1)]
            continue
        for i, cell in enumerate(json.loads(text)["cells"]):
            parts = [_source(cell)]
            for output in cell.get("outputs", []):
                shown = [output.get("text", "")] + [value for kind, value in output.get(
                    "data", {}).items() if kind.startswith("text/")]
                parts += ["".join(v) if isinstance(v, list) else str(v) for v in shown]
            found += [(f"{name}, cell {i}, line {n}", _normalise(line))
                      for n, line in enumerate("\n".join(parts).split("\n"), 1)]
    return found


def _leaks(source: Path, out: Path) -> list[tuple[str, str, str]]:
    """(where in the hand-out, line, where in the answers) for every answer's line that the
    hand-out `out` of `source` gives away, sorted."""
    answers = _answer_lines(source)
    places: dict[str, list[str]] = {}
    for where, line in _handout_lines(out):
        if line in answers:
            places.setdefault(line, []).append(where)
    return sorted((wheres[0], line, answers[line]) for line, wheres in places.items()
                  if len(wheres) == 1 and line not in SHARED)


def test_the_leak_check_on_the_toy(toy, tmp_path):
    answers = _answer_lines(toy)
    assert {"scaled_value = self.a * x", "for _ in range(2):",
            "return [k_value * k_value for k_value in range(n)]",
            "Because the model answer is long enough to leak.",
            "secret_solution_cell = sorted(set('whole cell answer'))"} <= set(answers)
    assert "return scaled_value" not in answers                        # computes nothing
    assert "return x + x" not in answers                               # too short to tell
    assert answers["for _ in range(2):"] == "scratchnet/sub/helpers.py:4"
    assert answers["Because the model answer is long enough to leak."] == (
        "notebooks/01_toy.ipynb, cell 5, line 1")
    out = make_handout(tmp_path / "student", toy, tasks=TOY_TASKS).path
    assert _leaks(toy, out) == []
    # solutions left in (all but T01.1's) are seen, in the file and line that hold them
    one = make_handout(tmp_path / "one", toy, blank={"T01.1"}, tasks=TOY_TASKS).path
    nb = "notebooks/01_toy.ipynb, cell"
    assert _leaks(toy, one) == [
        (f"{nb} 2, line 3", "return [k_value * k_value for k_value in range(n)]",
         f"{nb} 2, line 4"),
        (f"{nb} 4, line 1", "secret_solution_cell = sorted(set('whole cell answer'))",
         f"{nb} 4, line 1"),
        (f"{nb} 5, line 1", "Because the model answer is long enough to leak.", f"{nb} 5, line 1"),
        ("scratchnet/sub/helpers.py:3", "for _ in range(2):", "scratchnet/sub/helpers.py:4")]
    # and so is an answer pasted anywhere, once; twice, it is an idiom of the hand-out
    test_toy = out / "tests/tasks/test_toy.py"
    test_toy.write_text(test_toy.read_text() + "    scaled_value = self.a * x  # pasted\n")
    assert _leaks(toy, out) == [("tests/tasks/test_toy.py:3", "scaled_value = self.a * x",
                                 "scratchnet/toy.py:16")]
    (out / "README.md").write_text("scaled_value = self.a * x\n")
    assert _leaks(toy, out) == []


def test_no_solution_in_the_handout(student):
    """No line of an answer is in the untouched hand-out (every task blanked), in any of its text
    files: the package, the notebooks' cells, tests/tasks, README.md, Makefile, ….

    The answers are the lines inside the package's SOLUTION regions and inside the notebooks'
    solution cells (their BEGIN/END SOLUTION regions, or the whole cell when it has none,
    written answers too). Hidden tests are not answers: they share the visible tests'
    scaffolding, and test_notebooks_match_nbgrader sees that they are gone. A hand-out line
    gives an answer away when it equals one of the answers' lines, both taken without
    indentation and trailing comment. Not every line of an answer tells anything, and a test
    that cries wolf gets switched off, so these lines are left out:
    - comments, blank lines and lines shorter than MIN_CHARS (16) characters (`else:`,
      `return y`, a lone bracket): too common to tell apart, while `return 1 - y * y` (Tanh's
      derivative, 16) and every longer line count;
    - code lines that compute nothing, made of names, attributes, subscripts by a string, `,`,
      `=` and `:` alone (`saved = self.saved`, `n, c, h, w = x.shape`, `if bias is not None:`,
      `t = state["step"]`): the package's plumbing, repeated by its functions; a call, an
      operator or a comparison makes a line count;
    - lines of a written (markdown) answer of fewer than MIN_WORDS (4) words, a lone formula:
      prose gives an answer away by its sentences;
    - idioms: a line that the hand-out holds in two places or more (`expect_grad(self,
      grad_output, saved["output_shape"])` in every backward, `self.save_for_backward(x=x)` in
      the lessons and tests), and the lines of SHARED, each with its reason. "Appears outside
      every solution region of the package" would not do as the rule: every line of the
      hand-out's package is outside them, so it would excuse exactly the leaks to be caught,
      an answer copied into unmarked code (Adam.update_amsgrad beside Adam.update, init's
      xavier_normal_ and kaiming_uniform_ beside the tasks), which appears once.
    Lines are compared whole: an answer's line quoted inside a longer one (a task's hint in a
    notebook's text, "`if _empty(tensor): return tensor`") is the instructor's choice."""
    answers = _answer_lines(ROOT)
    assert len(answers) > 100
    leaks = _leaks(ROOT, student)
    assert not leaks, "answers in the hand-out:\n" + "\n".join(
        f"{where}: {line!r} (the answer at {answer})" for where, line, answer in leaks)


def test_a_blank_raises_its_task_message(student):
    script = textwrap.dedent(f"""\
        import torch, scratchnet as sn
        assert sn.__file__.startswith({str(student)!r}), sn.__file__
        try:
            sn.Linear(2, 3)(torch.randn(1, 2))
        except NotImplementedError as error:
            print(error)
        """)
    env = {**os.environ, "PYTHONPATH": str(student)}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=student, env=env, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == task("T01.1").stub_message("Linear.forward")


def test_one_blank_task_and_no_fast_paths(tmp_path):
    out = make_handout(tmp_path / "one", ROOT, blank={"T01.1"})
    assert (out.stubs, out.cleared_cells, out.blanked) == (1, 0, ("T01.1",))
    linear = (out.path / "scratchnet/linear.py").read_text(encoding="utf-8")
    assert task("T01.1").stub_message("Linear.forward") in linear
    assert "NotImplementedError" not in (out.path / "scratchnet/conv.py").read_text()
    # the other solutions run, on the textbook path: a training step of the course network
    script = textwrap.dedent(f"""\
        import torch, scratchnet as sn
        assert sn.__file__.startswith({str(out.path)!r}), sn.__file__
        torch.set_grad_enabled(False)
        torch.manual_seed(0)
        net = sn.Sequential(sn.Conv2d(3, 8, 2, stride=2), sn.ReLU(),
                            sn.Upsampling(8, 3, 3, padding=1), sn.Sigmoid())
        opt = sn.Adam(net.parameters(), lr=1e-3)
        loss_fn = sn.MSELoss()
        x = torch.rand(2, 3, 8, 8)
        loss = loss_fn(net(x), x)
        opt.zero_grad(); net.backward(loss_fn.backward()); opt.step()
        print(float(loss))
        try:
            sn.Linear(2, 3)(torch.randn(1, 2))
        except NotImplementedError as error:
            print(error)
        """)
    env = {**os.environ, "PYTHONPATH": str(out.path)}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=out.path, env=env, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[1].startswith("T01.1 Linear.forward — ")


def test_cli_writes_the_handout_and_reports_errors(toy, tmp_path, capsys, monkeypatch):
    from scratchnet.coursework import handout

    monkeypatch.setattr(handout, "TASKS", TOY_TASKS)
    out = tmp_path / "student"
    assert cli.main(["handout", str(out), "--source", str(toy)]) == 0
    assert capsys.readouterr().out == (f"wrote the student edition to {out}: 3 task stubs in 2 "
                                       "package files, 1 notebook (3 solution cells cleared)\n")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    assert cli.main(["handout", str(tmp_path / "full"), "--source", str(toy)]) == 1
    assert capsys.readouterr().err.startswith("scratchnet handout: error: ")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["handout", "--help"])
    assert exit_.value.code == 0
    assert "python -m scratchnet handout build/student" in capsys.readouterr().out


def test_notebooks_match_nbgrader(student):
    """The notebooks are what nbgrader's own preprocessors make of the solution edition, less
    its instructor-only cells (ours, not nbgrader's)."""
    from scratchnet.coursework.handout import instructor_only

    nbformat = pytest.importorskip("nbformat")
    preprocessors = pytest.importorskip("nbgrader.preprocessors")
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb, resources = nbformat.read(path, as_version=4), {}
        nb.cells = [cell for cell in nb.cells if not instructor_only(cell)]
        for step in (preprocessors.ClearSolutions, preprocessors.ClearHiddenTests,
                     preprocessors.ClearOutput):
            nb, resources = step().preprocess(nb, resources)
        assert nbformat.read(student / "notebooks" / path.name, as_version=4) == nb, path.name


def test_instructor_only_cells_are_left_out_of_the_handout():
    """Cells marked `"scratchnet": {"edition": "instructor"}` (notebook 11's views and timings
    of the fast paths) are not in the student edition; a graded cell cannot be marked so."""
    from scratchnet.coursework.handout import handout_notebook
    from scratchnet.coursework.regions import MarkerError

    keep = {"cell_type": "markdown", "metadata": {}, "source": "derivation"}
    drop = {"cell_type": "code", "metadata": {"scratchnet": {"edition": "instructor"}},
            "source": "show_source(winograd_forward)", "outputs": [], "execution_count": 1}
    nb = {"cells": [keep, drop], "metadata": {}}
    handout_notebook(nb, "nb.ipynb", set(), set())
    assert [c["source"] for c in nb["cells"]] == [["derivation"]]
    graded = {**drop, "metadata": {**drop["metadata"], "nbgrader": {"grade": True}}}
    with pytest.raises(MarkerError, match="cannot be instructor-only"):
        handout_notebook({"cells": [graded], "metadata": {}}, "nb.ipynb", set(), set())


def test_modules_only_the_fast_paths_use_are_not_in_the_handout(student):
    """winograd.py is a complete 3×3 convolution forward and backward: the student edition, which
    has no fast paths, does not ship it, and nothing in it imports it."""
    from scratchnet.coursework.handout import FAST_PATH_MODULES

    for name in FAST_PATH_MODULES:
        assert (ROOT / name).is_file() and not (student / name).exists(), name
        module = Path(name).stem
        importers = [p for p in (student / "scratchnet").rglob("*.py")
                     if f"import {module}" in p.read_text() or f".{module} import" in p.read_text()]
        assert not importers, importers
