"""The autograder (`python -m scratchnet grade`): the solution edition gets full marks, the
untouched hand-out zero; blanking one task costs that task and only the tasks that depend on it;
tampering with the tests or the check cells gains nothing, nor do skipped tests, symbolic links or
files that shadow the package's modules; a hanging task costs only itself; Ctrl-C leaves no
process and no temporary folder behind; the instructor's mistakes are errors, not zeros.

The expensive runs are module-scoped fixtures shared by the tests; runs that need only part of
the course use `tasks=` (the tests of some tasks, the notebooks of others).
"""
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from scratchnet import cli
from scratchnet.coursework.grade import (
    InstructorError,
    SubmissionResult,
    TaskScore,
    format_table,
    grade,
    instructor_root,
    merge_notebook,
    parse_tasks,
    read_notebook_spec,
    submission_files,
    write_csv,
)
from scratchnet.coursework.handout import cell_task, current_umask, write_handout
from scratchnet.coursework.tasks import TASKS, dependents, task

ROOT = Path(__file__).resolve().parents[1]
CODE = [t.id for t in TASKS if t.kind == "code"]
EXERCISES = [t.id for t in TASKS if t.kind == "exercise"]
AUTOGRADED = [t.id for t in TASKS if t.autograded]


def full(result: SubmissionResult) -> set[str]:
    return {tid for tid, s in result.scores.items() if s.points is not None
            and s.points == s.task.points}


def lost(result: SubmissionResult) -> set[str]:
    return {tid for tid, s in result.scores.items() if s.points is not None
            and s.points < s.task.points}


def explain(result: SubmissionResult) -> str:
    return format_table([result], verbose=True)


def stub_to(folder: Path, task_id: str, code: str) -> None:
    """Replace the stubs of blanked task `task_id` in the package by `code` (one line)."""
    pattern = re.compile(r'raise NotImplementedError\("' + re.escape(task_id) + r' [^\n]*')
    files = {w.split(":")[0] for w in task(task_id).where}
    for rel in files:
        path = folder / rel
        text = path.read_text()
        new = pattern.sub(code, text)
        assert new != text, f"no stub of {task_id} in {rel}"
        path.write_text(new)


def tamper(folder: Path) -> None:
    """What a student might try: tests that always pass, check cells that do nothing (or are
    deleted, or lost their nbgrader metadata), checks.py that checks nothing."""
    tests = folder / "tests" / "tasks"
    for i, test in enumerate(sorted(tests.glob("*.py"))):
        if i == 0:
            markers = "".join(f"@pytest.mark.{t.grade_id}\n" for t in TASKS if t.kind == "code")
            test.write_text(f"import pytest\n\n\n{markers}def test_everything():\n"
                            "    assert True\n")
        else:
            test.unlink()
    checks = folder / "scratchnet" / "coursework" / "checks.py"
    checks.write_text(checks.read_text() + "\n\ndef expect_close(*args, **kwargs):\n    pass\n\n\n"
                      "def expect_gradcheck(*args, **kwargs):\n    pass\n\n\n"
                      "def expect_true(*args, **kwargs):\n    pass\n")
    for path in sorted((folder / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        cells = []
        for cell in nb["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("grade") and not meta.get("solution") and cell["cell_type"] == "code":
                gid = meta["grade_id"]
                if gid.endswith("b"):
                    continue                                  # deleted
                cell["source"] = "pass"
                if gid.endswith("c"):
                    del cell["metadata"]["nbgrader"]          # no longer a graded cell
            cells.append(cell)
        nb["cells"] = cells
        path.write_text(json.dumps(nb))


# ---------------------------------------------------------------------------------------------
# small pieces

def test_grade_ids_name_their_task():
    assert cell_task("T04_5") == "T04.5"
    assert cell_task("T04_5b") == "T04.5"
    assert cell_task("T04_12c") == "T04.12"
    assert cell_task("T04_7_solution") == "T04.7"
    assert cell_task("intro") is None and cell_task(None) is None


def test_parse_tasks():
    assert [t.id for t in parse_tasks("T01")] == [t.id for t in TASKS if t.number == "01"]
    assert [t.id for t in parse_tasks("T04.4, t01_1")] == ["T01.1", "T04.4"]
    assert len(parse_tasks(None)) == len(TASKS)
    for bad in ("T99", "T04.99", "conv", ","):
        with pytest.raises(ValueError):
            parse_tasks(bad)


def _cell(kind, source, **nbgrader):
    cell = {"cell_type": kind, "metadata": {}, "source": source}
    if kind == "code":
        cell.update(outputs=[], execution_count=None)
    if nbgrader:
        cell["metadata"]["nbgrader"] = {"schema_version": 3, "task": False, **nbgrader}
    return cell


def test_merge_restores_the_instructors_graded_and_locked_cells(tmp_path):
    hidden = "check(x)\n### BEGIN HIDDEN TESTS\ncheck_more(x)\n### END HIDDEN TESTS\n"
    instructor = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        _cell("code", "x = solve()", grade=False, grade_id="T01_5_solution", locked=False,
              solution=True),
        _cell("code", hidden, grade=True, grade_id="T01_5", locked=True, solution=False,
              points=2),
        _cell("code", "setup()", grade=False, grade_id="setup", locked=True, solution=False),
        _cell("code", "check_all()", grade=True, grade_id="T01_4", locked=True, solution=False,
              points=1),
        _cell("markdown", "model answer", grade=True, grade_id="T01_8", locked=False,
              solution=True, points=1),
    ]}
    path = tmp_path / "01_x.ipynb"
    path.write_text(json.dumps(instructor))
    spec = read_notebook_spec(path, "01")
    assert set(spec.graded) == {"T01_5", "T01_4"} and spec.graded["T01_5"] == ("T01.5", 2.0)
    assert set(spec.overwrite) == {"T01_5", "setup", "T01_4"}
    student = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        _cell("code", "x = 42", grade=False, grade_id="T01_5_solution", locked=False,
              solution=True),
        _cell("markdown", "pass", grade=True, grade_id="T01_5", locked=False, solution=True,
              points=20),
        _cell("code", "import os", grade=False, grade_id="setup", locked=False, solution=False),
        _cell("markdown", "my answer", grade=True, grade_id="T01_8", locked=False,
              solution=True, points=1),
    ]}
    present = merge_notebook(student, spec)
    assert present == {"T01_5"}                      # T01_4 was deleted: it scores 0
    cells = student["cells"]
    assert cells[0]["source"] == "x = 42"              # the student's solution stays
    assert cells[1]["cell_type"] == "code" and cells[1]["source"] == hidden
    assert cells[1]["metadata"]["nbgrader"]["points"] == 2 and cells[1]["outputs"] == []
    assert cells[2]["source"] == "setup()" and cells[2]["metadata"]["nbgrader"]["locked"]
    assert cells[3]["source"] == "my answer"


def test_instructor_root_must_be_a_checkout(tmp_path):
    assert instructor_root() == ROOT
    with pytest.raises(FileNotFoundError, match="not the instructor's checkout"):
        instructor_root(tmp_path)


def test_table_and_csv(tmp_path):
    def result(name, points):
        scores = {t.id: TaskScore(t, None if not t.autograded else points(t)) for t in TASKS}
        return SubmissionResult(name, tmp_path / name, scores)

    results = [result("alice", lambda t: t.points), result("bob", lambda t: 0.0)]
    results[1].scores["T04.4"].points = 1.33
    results[1].scores["T04.4"].reasons = ["test_conv2d_backward: CheckFailed: ∂L/∂b is 1/32 of"]
    table = format_table(results, verbose=True)
    top = sum(task(t).points for t in AUTOGRADED)
    assert re.search(rf"^total\s+{top:g}\s+{top:g}\s+1\.33$", table, re.MULTILINE)
    assert re.search(r"^T01\.8 .*manual\s+manual\s+manual$", table, re.MULTILINE)
    assert "∂L/∂b is 1/32 of" in table
    wide = format_table([result(f"s{i}", lambda t: 0.0) for i in range(8)])
    assert wide.splitlines()[0].split()[:3] == ["submission", "T01.1", "T01.2"]
    out = write_csv(results, tmp_path / "out" / "grades.csv")
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["submission", *(t.id for t in TASKS), "total", "max", "flags"]
    assert rows[0]["submission"] == "alice" and rows[0]["T04.4"] == "3"
    assert rows[1]["T04.4"] == "1.33" and rows[1]["T01.8"] == "" and rows[1]["total"] == "1.33"
    assert rows[1]["max"] == f"{top:g}"
    assert [p.name for p in out.parent.iterdir()] == ["grades.csv"]
    assert out.stat().st_mode & 0o044 == 0o044 & ~current_umask()  # as readable as any new file


def test_bad_arguments_exit_non_zero(tmp_path, capsys):
    assert cli.main(["grade", str(tmp_path / "missing")]) == 1
    assert "no such folder" in capsys.readouterr().err
    assert cli.main(["grade", str(tmp_path)]) == 1
    assert "not a copy of the hand-out" in capsys.readouterr().err
    (tmp_path / "alice.zip").write_bytes(b"PK")
    assert cli.main(["grade", str(tmp_path / "alice.zip")]) == 1
    assert "alice.zip is a file, not a folder" in capsys.readouterr().err
    assert cli.main(["grade", str(ROOT), "--tasks", "T42"]) == 1
    assert "no task or notebook" in capsys.readouterr().err


def test_only_the_submissions_own_files_are_taken(tmp_path):
    """Its task files and the .py files it added, unless one would shadow a module of the
    package (a package or a compiled module of the same name); never a symbolic link."""
    ref = tmp_path / "ref"
    for rel in ("__init__.py", "linear.py", "containers.py", "gradcheck.py", "optim/__init__.py",
                "optim/sgd.py", "coursework/checks.py"):
        (ref / rel).parent.mkdir(parents=True, exist_ok=True)
        (ref / rel).write_text("")
    sub = tmp_path / "sub"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "linear.py").write_text("")
    (outside / "nb.ipynb").write_text("{}")
    files = ("__init__.py", "linear.py", "gradcheck.py", "gradcheck/__init__.py",
             "optim/sgd.py", "optim/sgd/fast.py", "optim/extra.py", "optim/__init__.py",
             "my_helpers.py", "mystuff/__init__.py", "mystuff/a.py", "mystuff/b.txt",
             "fast.cpython-311-x86_64-linux-gnu.so", "ext.pyd", "notes.txt",
             "coursework/checks.py", "coursework/evil.py", "__pycache__/linear.cpython-311.pyc",
             ".hidden.py")
    for rel in files:
        (sub / "scratchnet" / rel).parent.mkdir(parents=True, exist_ok=True)
        (sub / "scratchnet" / rel).write_text("")
    (sub / "scratchnet" / "containers.py").symlink_to(outside / "linear.py")
    (sub / "scratchnet" / "linked").symlink_to(outside, target_is_directory=True)
    (sub / "notebooks").mkdir()
    (sub / "notebooks" / "01_a.ipynb").write_text("{}")
    (sub / "notebooks" / "02_b.ipynb").symlink_to(outside / "nb.ipynb")
    taken, rejected = submission_files(sub, ref)
    assert sorted(taken) == ["notebooks/01_a.ipynb", "scratchnet/linear.py",
                             "scratchnet/my_helpers.py", "scratchnet/mystuff/__init__.py",
                             "scratchnet/mystuff/a.py", "scratchnet/optim/extra.py",
                             "scratchnet/optim/sgd.py"]     # linear.py, sgd.py: task files
    why = {line.split(" is not used: ")[0]: line.split(" is not used: ")[1] for line in rejected}
    assert set(why) == {
        "scratchnet/gradcheck/__init__.py", "scratchnet/optim/sgd/fast.py",
        "scratchnet/fast.cpython-311-x86_64-linux-gnu.so", "scratchnet/ext.pyd",
        "scratchnet/notes.txt", "scratchnet/mystuff/b.txt", "scratchnet/coursework/evil.py",
        "scratchnet/containers.py", "scratchnet/linked/", "notebooks/02_b.ipynb"}, rejected
    assert "scratchnet.gradcheck would shadow the course's scratchnet/gradcheck.py" in \
        why["scratchnet/gradcheck/__init__.py"]
    assert "scratchnet.optim.sgd would shadow" in why["scratchnet/optim/sgd/fast.py"]
    assert "symbolic link" in why["scratchnet/containers.py"]
    assert "symbolic link" in why["notebooks/02_b.ipynb"]
    assert "only .py files" in why["scratchnet/ext.pyd"]
    # a package made of a folder of the course's that has no __init__.py
    (ref / "data").mkdir()
    (ref / "data" / "paths.py").write_text("")
    (sub / "scratchnet" / "data").mkdir()
    (sub / "scratchnet" / "data" / "__init__.py").write_text("")
    taken, rejected = submission_files(sub, ref)
    assert "scratchnet/data/__init__.py" not in taken
    assert any(r.startswith("scratchnet/data/__init__.py is not used") for r in rejected)
    # a symbolic link for the whole package or notebooks folder: nothing of it is taken
    linked = tmp_path / "linked_sub"
    linked.mkdir()
    (linked / "scratchnet").symlink_to(sub / "scratchnet", target_is_directory=True)
    (linked / "notebooks").symlink_to(sub / "notebooks", target_is_directory=True)
    assert submission_files(linked, ref)[0] == []


def _instructor_copy(base: Path) -> Path:
    """The parts of this checkout that the grader's up-front checks read."""
    root = base / "instructor"
    (root / "scratchnet").mkdir(parents=True)
    (root / "scratchnet" / "__init__.py").write_text("")
    shutil.copyfile(ROOT / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(ROOT / "tests" / "tasks", root / "tests" / "tasks",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "notebooks", root / "notebooks",
                    ignore=shutil.ignore_patterns("__pycache__", ".*"))
    return root


def test_the_instructors_mistakes_are_errors_not_zeros(tmp_path, capsys):
    root = _instructor_copy(tmp_path)
    tests = root / "tests" / "tasks" / "test_t01_modules.py"
    tests.write_text(tests.read_text().replace("@pytest.mark.T01_1\n", ""))
    nb01 = next((root / "notebooks").glob("01_*.ipynb"))
    nb = json.loads(nb01.read_text())
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if str(meta.get("grade_id", "")).startswith("T01_5") and not meta.get("solution"):
            meta["grade"] = False
    nb01.write_text(json.dumps(nb))
    next((root / "notebooks").glob("02_*.ipynb")).unlink()
    with pytest.raises(InstructorError) as e:
        grade([ROOT], tasks="T01.1,T01.2,T01.5,T01.6,T02.5", source=root)
    message = str(e.value)
    assert "no test in tests/tasks is marked T01_1" in message
    assert "T01.5 (exercise): notebooks/01_modules_and_the_chain_rule.ipynb has no graded" in message
    assert "notebooks/02_activations_and_mse.ipynb is missing (it grades T02.5" in message
    assert "T01.2" not in message and "T01.6" not in message          # those are fine
    assert cli.main(["grade", str(ROOT), "--tasks", "T01.1", "--source", str(root)]) == 1
    assert "no test in tests/tasks is marked T01_1" in capsys.readouterr().err
    with pytest.raises(ValueError, match="jobs >= 1"):
        grade([ROOT], jobs=0)
    with pytest.raises(ValueError, match="time limit must be > 0 s"):
        grade([ROOT], timeout=0)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["grade", str(ROOT), "--timeout", "0"])
    assert exit_.value.code == 2
    assert "argument --timeout: expected a positive number, got 0" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# the whole course: solution, untouched hand-out, tampered hand-out

@pytest.fixture(scope="module")
def course_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("grade")
    student = write_handout(base / "student")
    tampered = write_handout(base / "tampered")
    tamper(tampered)
    exercises = write_handout(base / "exercises", blank=EXERCISES)
    started = time.monotonic()
    results = grade([ROOT, student, tampered, exercises], jobs=2)
    seconds = time.monotonic() - started
    print(f"\ngraded 4 submissions in {seconds:.0f} s:",
          {r.name: (r.seconds, r.timings) for r in results})
    return dict(zip(("solution", "student", "tampered", "exercises"), results))


def test_the_solution_gets_full_marks(course_run):
    r = course_run["solution"]
    assert full(r) == set(AUTOGRADED), explain(r)
    assert r.total == r.max == sum(task(t).points for t in AUTOGRADED)
    assert all(r.scores[t.id].points is None for t in TASKS if not t.autograded)
    assert not r.errors
    # nbgrader gives 0 to a cell that writes to stderr; ours do not
    assert r.stderr_cells == []


def test_the_untouched_handout_gets_zero(course_run):
    r = course_run["student"]
    assert r.total == 0 and not r.errors, explain(r)
    assert all(s.reasons for s in r.scores.values() if s.points is not None)


def test_the_handout_is_graded_with_its_own_package(course_run):
    """The instructor's package is installed (editable) in this environment, so a careless
    grader would import it; each run of the grader records the `scratchnet` it imported: the
    submission's copy in its temporary folder, under this Python (the notebooks' kernel too)."""
    found = subprocess.run([sys.executable, "-c", "import scratchnet; print(scratchnet.__file__)"],
                           cwd="/", capture_output=True, text=True, check=True,
                           env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert Path(found.stdout.strip()).resolve().is_relative_to(ROOT)
    r = course_run["student"]
    assert r.workspace is not None and r.workspace.name.startswith("scratchnet-grade-")
    assert not r.workspace.exists()                      # removed after grading
    assert set(r.origins) == set(r.interpreters) == set(r.timings)   # pytest and each notebook
    for run, origin in r.origins.items():
        assert Path(origin) == r.workspace / "scratchnet" / "__init__.py", run
        assert Path(r.interpreters[run]).resolve() == Path(sys.executable).resolve(), run


def test_blanking_the_exercises_costs_exactly_the_exercises(course_run):
    """Exercises have no dependents: with every exercise blanked at once, each one loses its
    points and every other task keeps full marks — so each blanked alone costs only itself."""
    r = course_run["exercises"]
    assert lost(r) == set(EXERCISES), explain(r)


def test_tampering_with_tests_and_check_cells_gains_nothing(course_run):
    r = course_run["tampered"]
    assert r.total == 0, explain(r)
    reasons = " ".join(" ".join(s.reasons) for s in r.scores.values())
    assert "is missing from the notebook" in reasons


# ---------------------------------------------------------------------------------------------
# what a submission cannot use: skipped tests, symbolic links, modules that shadow the package's

def insert_first(path: Path, cls: str, method: str, line: str) -> None:
    """Make `line` the first statement of `cls.method` in the package file `path`."""
    lines = path.read_text().splitlines(keepends=True)
    start = next(i for i, t in enumerate(lines) if t.startswith(f"class {cls}("))
    at = next(i for i in range(start, len(lines)) if lines[i].lstrip().startswith(f"def {method}("))
    indent = " " * (len(lines[at]) - len(lines[at].lstrip()) + 4)
    lines.insert(at + 1, f"{indent}{line}\n")
    path.write_text("".join(lines))


@pytest.fixture(scope="module")
def crafted_runs(tmp_path_factory):
    """Submissions that try what should not pay, graded on T01.1, T02.1 (tests) and T01.5 (a
    notebook exercise); the temporary folders are kept to be looked at."""
    base = tmp_path_factory.mktemp("crafted")
    nb01 = f"{task('T01.5').notebook}.ipynb"
    # the solutions, but Linear.forward skips the test that calls it (T01.1), ReLU's xfails
    # it (T02.1)
    skipping = write_handout(base / "skipping", blank=set())
    insert_first(skipping / "scratchnet" / "linear.py", "Linear", "forward",
                 '__import__("pytest").skip("later")')
    insert_first(skipping / "scratchnet" / "activations.py", "ReLU", "function",
                 '__import__("pytest").xfail("later")')
    # the hand-out, with links to the solutions: the task file and the notebook
    linked = write_handout(base / "linked")
    for rel in ("scratchnet/linear.py", f"notebooks/{nb01}"):
        (linked / rel).unlink()
        (linked / rel).symlink_to(ROOT / rel)
    # the solutions, with a package that would shadow gradcheck.py (and break `import
    # scratchnet`), a compiled module, and a helper module of its own that linear.py uses
    shadowing = write_handout(base / "shadowing", blank=set())
    (shadowing / "scratchnet" / "gradcheck").mkdir()
    (shadowing / "scratchnet" / "gradcheck" / "__init__.py").write_text(
        "raise ImportError('the shadow was imported')\n")
    (shadowing / "scratchnet" / "fast.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\0ELF")
    (shadowing / "scratchnet" / "my_helpers.py").write_text("SCALE = 1.0\n")
    with (shadowing / "scratchnet" / "linear.py").open("a") as f:
        f.write("\nfrom .my_helpers import SCALE as _SCALE  # noqa: E402\n")
    # the solutions, with a notebook nbformat cannot read
    unreadable = write_handout(base / "unreadable", blank=set())
    nb = json.loads((unreadable / "notebooks" / nb01).read_text())
    nb["nbformat"] = 99
    (unreadable / "notebooks" / nb01).write_text(json.dumps(nb))
    subs = [skipping, linked, shadowing, unreadable]
    results = grade(subs, tasks="T01.1,T02.1,T01.5", jobs=2, keep=True)
    yield dict(zip(("skipping", "linked", "shadowing", "unreadable"), results))
    for r in results:
        if r.workspace is not None:
            shutil.rmtree(r.workspace, ignore_errors=True)


def test_the_students_code_cannot_skip_or_xfail_a_test(crafted_runs):
    """pytest.skip or pytest.xfail in the student's code runs in the worker, where no test runs:
    the call fails, and the test with it; as the code reaches pytest (through __import__), the
    scan flags it and the task scores 0."""
    r = crafted_runs["skipping"]
    assert r.scores["T01.1"].points == 0 and r.scores["T02.1"].points == 0, explain(r)
    assert r.scores["T01.5"].points == 2.0, explain(r)
    assert {(f.task, f.name) for f in r.flags} == {("T01.1", "__import__()"),
                                                   ("T02.1", "__import__()")}, r.flags
    reasons = explain(r)
    assert "test_linear_forward_without_bias: Skipped: later" in reasons, reasons
    assert "test_relu_inplace: XFailed: later" in reasons, reasons
    assert "counts as failed" not in reasons


def test_symbolic_links_are_not_followed(crafted_runs):
    r = crafted_runs["linked"]
    assert r.total == 0, explain(r)
    # absent, not found elsewhere (the instructor's package is installed in editable mode)
    assert re.search(r"No module named 'scratchnet\.linear'|cannot import name 'linear'",
                     r.scores["T01.1"].reasons[0]), explain(r)
    nb01 = f"{task('T01.5').notebook}.ipynb"
    for rel in ("scratchnet/linear.py", f"notebooks/{nb01}"):
        assert f"{rel} is not used: it is a symbolic link (graded as absent)" in r.errors
        assert not (r.workspace / rel).exists() and not (r.workspace / rel).is_symlink()
    assert "is missing" in " ".join(r.scores["T01.5"].reasons)
    assert not any(p.is_symlink() for p in r.workspace.rglob("*"))


def test_added_files_cannot_shadow_the_packages_modules(crafted_runs):
    r = crafted_runs["shadowing"]
    assert full(r) == {"T01.1", "T02.1", "T01.5"}, explain(r)
    rejected = {e.split(" is not used: ")[0] for e in r.errors}
    assert rejected == {"scratchnet/gradcheck/__init__.py",
                        "scratchnet/fast.cpython-311-x86_64-linux-gnu.so"}, r.errors
    package = r.workspace / "scratchnet"
    assert (package / "my_helpers.py").is_file() and (package / "gradcheck.py").is_file()
    assert not (package / "gradcheck").exists()
    assert not list(package.glob("*.so"))


def test_an_unreadable_notebook_is_reported_as_such(crafted_runs):
    r = crafted_runs["unreadable"]
    assert full(r) == {"T01.1", "T02.1"}, explain(r)
    nb01 = f"{task('T01.5').notebook}.ipynb"
    reasons = " ".join(r.scores["T01.5"].reasons)
    assert f"notebooks/{nb01} could not be read: " in reasons, reasons
    assert "kernel did not start" not in reasons


# ---------------------------------------------------------------------------------------------
# one task blanked in the solution edition

@pytest.fixture(scope="module")
def blanked_runs(tmp_path_factory):
    """For every code task, the solution with only that task blanked, graded on the tests."""
    base = tmp_path_factory.mktemp("blanked")
    subs = [write_handout(base / tid.replace(".", "_"), blank={tid}) for tid in CODE]
    started = time.monotonic()
    results = grade(subs, tasks=CODE, jobs=2)
    print(f"\n{len(subs)} blanked submissions, tests only: {time.monotonic() - started:.0f} s")
    return dict(zip(CODE, results))


@pytest.mark.parametrize("task_id", CODE)
def test_blanking_a_task_costs_it_and_its_dependents_only(blanked_runs, task_id):
    r = blanked_runs[task_id]
    assert r.scores[task_id].points == 0, explain(r)
    assert lost(r) <= {task_id} | dependents(task_id), explain(r)


@pytest.fixture(scope="module")
def blanked_notebooks(tmp_path_factory):
    """A few representative tasks blanked, graded on their notebooks and those after them."""
    base = tmp_path_factory.mktemp("blanked_nb")
    out = {}
    for task_id, scope in (("T01.1", "T01,T02"), ("T04.2", "T04,T05"), ("T06.2", "T06")):
        sub = write_handout(base / task_id.replace(".", "_"), blank={task_id})
        out[task_id] = grade([sub], tasks=scope, jobs=2)[0]
    return out


@pytest.mark.parametrize("task_id", ["T01.1", "T04.2", "T06.2"])
def test_blanking_a_task_fails_the_checks_that_use_it(blanked_notebooks, task_id):
    r = blanked_notebooks[task_id]
    affected = {task_id} | dependents(task_id)
    assert task_id in lost(r) and lost(r) <= affected, explain(r)
    checks = {tid for tid in r.scores if task(tid).kind == "check"}
    assert checks & affected and checks & affected <= lost(r), explain(r)
    assert set(r.scores) - affected - {t for t in r.scores if not task(t).autograded} <= full(r)


# ---------------------------------------------------------------------------------------------
# hangs and interrupts

@pytest.fixture(scope="module")
def looping(tmp_path_factory):
    sub = write_handout(tmp_path_factory.mktemp("loop") / "looping", blank={"T02.3"})
    stub_to(sub, "T02.3", "while True: pass")
    return sub


def test_an_infinite_loop_costs_its_task_only(looping, tmp_path, capsys, monkeypatch):
    table = tmp_path / "grades.csv"
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    # --jobs 1: the notebook runs after the tests, in the same temporary folder
    assert cli.main(["grade", str(looping), "--tasks", "T02", "--timeout", "3", "--csv",
                     str(table), "--verbose", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "the test ran over 3 s and was stopped" in out
    row = next(csv.DictReader(table.open()))
    assert row["T02.3"] == "0" and row["T02.8"] == ""
    for tid in ("T02.1", "T02.2", "T02.4", "T02.6", "T02.7"):
        assert float(row[tid]) == task(tid).points, out
    assert list(temp.iterdir()) == []           # the temporary folders are gone


def test_a_package_that_never_finishes_importing_fails_its_code_tasks(tmp_path):
    """A hang at import stops the first test; the other tests are not kept waiting for it."""
    sub = write_handout(tmp_path / "stuck", blank=set())
    with (sub / "scratchnet" / "linear.py").open("a") as f:
        f.write("\nwhile True:\n    pass\n")
    r, = grade([sub], tasks="T01.1,T02.1", timeout=3)
    assert r.total == 0, explain(r)
    reasons = [reason for t in ("T01.1", "T02.1") for reason in r.scores[t].reasons]
    assert len(reasons) == 4 and reasons[0].endswith("the test ran over 3 s and was stopped")
    assert all("still starting (importing scratchnet)" in reason for reason in reasons[1:]), \
        reasons


def _processes_in(folder: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(folder) in os.readlink(proc / "cwd") or \
                        str(folder) in (proc / "cmdline").read_text():
                    pids.append(int(proc.name))
            except OSError:
                pass
    return pids


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="needs /proc (Linux)")
def test_ctrl_c_stops_the_children_and_removes_the_temporary_folders(looping, tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    # as typed in a terminal: SIGINT not ignored, also when this test runs in a background job
    # (whose commands inherit an ignored SIGINT)
    proc = subprocess.Popen([sys.executable, "-m", "scratchnet", "grade", str(looping),
                             "--tasks", "T02.3,T02.5", "--timeout", "60"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(_processes_in(temp)) < 2:
        time.sleep(0.5)       # until a test run and a notebook kernel are running
    time.sleep(2)
    assert len(_processes_in(temp)) >= 2
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    time.sleep(2)            # a kernel notices within a second that its runner is gone
    assert _processes_in(temp) == []
    assert list(temp.iterdir()) == []
    shutil.rmtree(temp)


def test_lesson_cells_marked_for_skipping_are_skipped_only_as_the_instructor_wrote_them(tmp_path):
    def lesson(id_, source, skip=False):
        cell = {"cell_type": "code", "id": id_, "source": source, "outputs": [],
                "execution_count": None, "metadata": {}}
        if skip:
            cell["metadata"]["scratchnet"] = {"grading": "skip"}
        return cell

    instructor = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        lesson("data", "x = load()"), lesson("figure", "draw(x)", skip=True),
        lesson("slow", "compare(x)", skip=True)]}
    path = tmp_path / "01_x.ipynb"
    path.write_text(json.dumps(instructor))
    spec = read_notebook_spec(path, "01")
    assert spec.skipped == {"figure", "slow"}
    student = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        lesson("data", "x = load()", skip=True),          # the student's flag counts for nothing
        lesson("figure", "draw(x)"),                       # unchanged: skipped
        lesson("slow", "compare(x); y = 1")]}              # changed: it runs
    merge_notebook(student, spec)
    flags = [c["metadata"]["scratchnet"].get("grading") for c in student["cells"]]
    assert flags == [None, "skip", None]
