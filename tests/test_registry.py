"""The task registry agrees with what it describes: the notebooks' graded cells, the package's
solution regions, and the task tests. One source, so the hand-out and the grader cannot drift."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from scratchnet.coursework.regions import SOLUTION, find_regions
from scratchnet.coursework.tasks import KINDS, NOTEBOOKS, TASKS, dependents, task, tasks_in

ROOT = Path(__file__).resolve().parents[1]
GRADE_ID = re.compile(r"^(T\d\d_\d+)([a-z]?)$")
SOLUTION_ID = re.compile(r"^(T\d\d_\d+)_solution(_[a-z])?$")


def nbgrader_cells(number: str) -> list[tuple[dict, nbformat.NotebookNode]]:
    nb = nbformat.read(ROOT / "notebooks" / f"{NOTEBOOKS[number]}.ipynb", as_version=4)
    return [(cell.metadata["nbgrader"], cell) for cell in nb.cells if "nbgrader" in cell.metadata]


def test_ids_are_unique_well_formed_and_in_notebook_order():
    ids = [t.id for t in TASKS]
    assert len(ids) == len(set(ids))
    for t in TASKS:
        assert re.fullmatch(r"T\d\d\.\d+", t.id) and t.number in NOTEBOOKS, t.id
        assert t.kind in KINDS and t.points > 0 and t.title
        assert all(task(d).number <= t.number for d in t.depends), t.id
        assert (t.kind == "code") == bool(t.where) == bool(t.todo), t.id
        if isinstance(t.todo, tuple):
            assert len(t.todo) == len(t.where), t.id
    for number in NOTEBOOKS:
        minors = [int(t.id.split(".")[1]) for t in tasks_in(number)]
        assert minors == list(range(1, len(minors) + 1)), number


# lessons that derive no package code of their own: nothing for a check to grade
WITHOUT_PACKAGE_CODE = {"11": "the optional fast paths, whose tasks are exercises only",
                        "12": "the hyperparameter study, which uses the layers of 01–07"}


@pytest.mark.parametrize("number", sorted(NOTEBOOKS))
def test_every_notebook_has_graded_checks_and_two_autograded_exercises(number):
    """Checks grade the package code a lesson derives; the lessons that derive none have
    exercises (and a written question) only."""
    kinds = [t.kind for t in tasks_in(number)]
    assert (kinds.count("check") >= 1) != (number in WITHOUT_PACKAGE_CODE)
    assert kinds.count("exercise") >= 2


@pytest.mark.parametrize("number", sorted(NOTEBOOKS))
def test_graded_cells_match_the_registry(number):
    """Every graded cell belongs to a task of this notebook, its points add up to the task's, and
    every check, exercise and written task has its cells."""
    points: dict[str, float] = {}
    solutions: set[str] = set()
    for meta, cell in nbgrader_cells(number):
        grade_id = meta["grade_id"]
        if meta.get("solution") and not meta.get("grade"):
            match = SOLUTION_ID.match(grade_id)
            assert match, f"{number}: solution cell {grade_id!r}"
            solutions.add(match.group(1))
            assert cell.cell_type == "code" and "### BEGIN SOLUTION" in cell.source, grade_id
            continue
        if not meta.get("grade"):
            continue
        match = GRADE_ID.match(grade_id)
        assert match, f"{number}: graded cell {grade_id!r} is not T##_#[letter]"
        gid = match.group(1)
        t = task(gid.replace("_", ".", 1))
        assert t.number == number, grade_id
        assert t.kind in ("check", "exercise", "written"), grade_id
        if t.kind == "written":
            assert cell.cell_type == "markdown" and meta.get("solution"), grade_id
        else:
            assert cell.cell_type == "code" and meta.get("locked") and not meta.get("solution")
        points[gid] = points.get(gid, 0) + meta["points"]
    for t in tasks_in(number):
        if t.kind == "code":
            assert t.grade_id not in points
            continue
        assert points.get(t.grade_id) == pytest.approx(t.points), \
            f"{t.id}: graded cells worth {points.get(t.grade_id)} points, registry {t.points}"
        if t.kind == "exercise":
            assert t.grade_id in solutions, f"{t.id} has no solution cell"


@pytest.mark.parametrize("number", sorted(NOTEBOOKS))
def test_sections_exist(number):
    nb = nbformat.read(ROOT / "notebooks" / f"{NOTEBOOKS[number]}.ipynb", as_version=4)
    headings = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for t in tasks_in(number):
        for section in re.findall(r"§(\d+)", t.section):
            assert re.search(rf"^## {section} ·", headings, re.M), f"{t.id}: no section §{section}"
        if t.section == "Exercises":
            assert re.search(r"^## Exercises", headings, re.M)


def test_every_code_task_has_a_region_in_each_place_it_names():
    for t in TASKS:
        for where in t.where:
            path, qualname = where.split(":")
            text = (ROOT / path).read_text()
            regions = [r for r in find_regions(text, path) if r.kind == SOLUTION]
            spans = function_spans(text)
            first, last = spans[qualname]
            assert any(first <= r.begin <= last for r in regions), \
                f"{t.id}: no solution region in {where}"


def function_spans(text: str) -> dict[str, tuple[int, int]]:
    """qualname → (first, last) 0-based line of every function and method in `text`."""
    spans: dict[str, tuple[int, int]] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.ClassDef)):
                name = prefix + child.name
                spans[name] = (child.lineno - 1, child.end_lineno - 1)
                visit(child, name + ".")

    visit(ast.parse(text), "")
    return spans


def test_every_code_task_has_task_tests():
    markers: set[str] = set()
    for path in (ROOT / "tests" / "tasks").glob("test_*.py"):
        markers |= set(re.findall(r"pytest\.mark\.(T\d\d_\d+)\b", path.read_text()))
    for t in TASKS:
        assert (t.grade_id in markers) == (t.kind == "code"), t.id


def test_dependents_follow_depends_transitively():
    assert dependents("T04.1") >= {"T04.3", "T04.5", "T05.2", "T05.3", "T08.1"}
    assert "T04.1" not in dependents("T04.1")
    assert dependents("T04.7") == set()


def test_check_says_where_a_notebook_task_is_graded(capsys):
    """check() runs the task tests of package code; for a notebook exercise it says where its test
    cells are instead of an empty pytest run, and a bad selection is refused."""
    from scratchnet.coursework import check

    assert check("T04_7") is False
    out = capsys.readouterr().out
    assert "T04.7" in out and "04_convolution_with_unfold" in out and "cells T04_7…" in out
    with pytest.raises(ValueError, match="expected a task id"):
        check("conv")
