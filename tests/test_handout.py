"""The student edition (`python -m scratchnet handout`): marker regions, stubs, fast-path deletion,
notebooks cleared the nbgrader way, determinism, and no solution leaking into the hand-out."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scratchnet import cli
from scratchnet.coursework import regions
from scratchnet.coursework.handout import (
    MARKER_FILE,
    _files,
    cell_task,
    make_handout,
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
        "pyproject.toml": "[project]\nname = 'toy'\ndev = [\n    \"pytest\",\n    \"nbgrader\",\n]\n",
        "Makefile": "TORCH  ?= torch==9.9.9\n",
        "environment.yml": "name: toy\n      - nbval\n      - nbgrader\n",
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
    weird = Task("T08.9", "q", 1, "code", "§1", 'say "hi" \\ bye', ("scratchnet/w.py:f",))
    text = f"def f(x):\n    if x:\n        {B}\n        return 1\n        {E}\n    return 0\n"
    new, _ = blank_python(text, "scratchnet/w.py", _claims([weird]), {"T08.9"})
    namespace = _run(new)
    assert namespace["f"](0) == 0
    with pytest.raises(NotImplementedError) as error:
        namespace["f"](1)
    assert str(error.value) == weird.stub_message("f")


@pytest.mark.parametrize("text, where, message", [
    (f"x = 1\n{B}\ny = 2\n{E}\n", (), r"w\.py:2: a SOLUTION region must hold code inside"),
    (f"def g():\n    {B}\n    return 2\n    {E}\n", (), r"w\.py:2: .* in g is claimed by no task"),
    (f"def f():\n    {B}\n    return 2\n    {E}\n", ("T08.8", "T08.9"),
     r"claimed by T08\.8, T08\.9; exactly one task's `where` must list 'scratchnet/w\.py:f'"),
    (f"def f():\n    {BH}\n    return 2\n    {EH}\n", (), r"w\.py:2: hidden-test markers"),
])
def test_regions_without_exactly_one_task_are_refused(text, where, message):
    tasks = [Task(i, "t", 1, "code", "§1", "do it", ("scratchnet/w.py:f",)) for i in where]
    with pytest.raises(MarkerError, match=message):
        blank_python(text, "scratchnet/w.py", _claims(tasks), {t.id for t in tasks})


def test_a_region_in_a_nested_function_belongs_to_the_claimed_outer_one():
    t = Task("T08.9", "t", 1, "code", "§1", "do it", ("scratchnet/w.py:C.f",))
    text = f"class C:\n    def f(self):\n        def inner():\n            {B}\n            " \
           f"return 1\n            {E}\n        return inner()\n"
    new, seen = blank_python(text, "scratchnet/w.py", _claims([t]), {"T08.9"})
    assert seen == [(t, "scratchnet/w.py:C.f")] and "T08.9 C.f —" in new


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
    assert cell_task("T03_7_solution") == "T03.7" and cell_task("T03_5b") == "T03.5"
    assert cell_task("T03_9") == "T03.9" and cell_task("T03_10_solution_b") == "T03.10"
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
    # students get no nbgrader (its Lab extension would ask them for a config) and no nbval setup
    assert (out / "pyproject.toml").read_text() == "[project]\nname = 'toy'\ndev = [\n    \"pytest\",\n]\n"
    assert (out / "environment.yml").read_text() == "name: toy\n      - nbval\n"
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
    with pytest.raises(ValueError, match="no task T07.7"):
        make_handout(tmp_path / "x", toy, blank={"T07.7"}, tasks=TOY_TASKS)
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


def _code_lines(lines) -> list[str]:
    return [s for line in lines if (s := line.strip()) and not s.startswith("#")]


def _secret_and_public(source: Path) -> tuple[set[str], list[str]]:
    """Lines inside the source's solution regions (package, notebook solution cells, hidden
    tests), and the source text outside every region that the hand-out copies."""
    secret: set[str] = set()
    public: list[str] = []
    for rel in _files(source / "scratchnet"):
        text = (source / "scratchnet" / rel).read_text(encoding="utf-8", errors="replace")
        if rel.suffix != ".py":
            public.append(text)
            continue
        lines = text.split("\n")
        inside = set()
        for r in find_regions(text, str(rel)):
            inside |= set(range(r.begin, r.end + 1))
            if r.kind == SOLUTION:
                secret |= set(_code_lines(r.body(lines)))
        public.append("\n".join(line for i, line in enumerate(lines) if i not in inside))
    for rel in _files(source / "notebooks"):
        if rel.suffix != ".ipynb":
            continue
        for cell in json.loads((source / "notebooks" / rel).read_text(encoding="utf-8"))["cells"]:
            text = _source(cell)
            solution = cell["metadata"].get("nbgrader", {}).get("solution", False)
            keep, hidden, in_region = [], [], False
            for line in text.split("\n"):
                if any(m in line for m in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS")):
                    in_region = True
                elif any(m in line for m in ("END SOLUTION", "END HIDDEN TESTS")):
                    in_region = False
                else:
                    (hidden if in_region else keep).append(line)
            secret |= set(_code_lines(hidden))
            if solution and not regions.has_solution_region(text):
                secret |= set(_code_lines(keep))
            else:
                public.append("\n".join(keep))
    for rel in _files(source / "tests" / "tasks") if (source / "tests" / "tasks").is_dir() else []:
        public.append((source / "tests" / "tasks" / rel).read_text(encoding="utf-8"))
    return secret, public


def _occurs(line: str, text: str, stripped_lines: set[str]) -> bool:
    return line in text if len(line) >= 12 else line in stripped_lines


def _handout_texts(out: Path) -> list[str]:
    texts = []
    for path in sorted(out.rglob("*")):
        if not path.is_file():
            continue
        raw = path.read_bytes().decode("utf-8", errors="replace")
        if path.suffix == ".ipynb":
            parts = []
            for cell in json.loads(raw)["cells"]:
                parts.append(_source(cell))
                for output in cell.get("outputs", []):
                    parts.append(json.dumps(output, ensure_ascii=False))
                    for value in [output.get("text", "")] + list(output.get("data", {}).values()):
                        parts.append("".join(value) if isinstance(value, list) else str(value))
            raw = "\n".join(parts)
        texts.append(raw)
    return texts


def _leaks(source: Path, out: Path) -> list[str]:
    secret, public = _secret_and_public(source)
    public_text = "\n".join(public)
    public_lines = {line.strip() for line in public_text.split("\n")}
    secret = {s for s in secret if not _occurs(s, public_text, public_lines)}
    text = "\n".join(_handout_texts(out))
    lines = {line.strip() for line in text.split("\n")}
    return sorted(s for s in secret if _occurs(s, text, lines))


def test_no_solution_leaks_into_the_toy_handout(toy, tmp_path):
    out = make_handout(tmp_path / "student", toy, tasks=TOY_TASKS).path
    secret, _ = _secret_and_public(toy)
    assert {"scaled_value = self.a * x", "return x + x  # the doubling", "y = y + x",
            "assert squares(5)[-1] == 16", "Because the model answer is long enough to leak.",
            "secret_solution_cell = sorted(set('whole cell answer'))"} <= secret
    assert _leaks(toy, out) == []
    one = make_handout(tmp_path / "one", toy, blank={"T01.1"}, tasks=TOY_TASKS).path
    assert "return x + x  # the doubling" in _leaks(toy, one)          # the test can see a leak


def test_no_solution_leaks_into_the_handout(student):
    secret, _ = _secret_and_public(ROOT)
    assert len(secret) > 20
    assert _leaks(ROOT, student) == []


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
    """The notebooks are what nbgrader's own preprocessors make of the solution edition."""
    nbformat = pytest.importorskip("nbformat")
    preprocessors = pytest.importorskip("nbgrader.preprocessors")
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb, resources = nbformat.read(path, as_version=4), {}
        for step in (preprocessors.ClearSolutions, preprocessors.ClearHiddenTests,
                     preprocessors.ClearOutput):
            nb, resources = step().preprocess(nb, resources)
        assert nbformat.read(student / "notebooks" / path.name, as_version=4) == nb, path.name
