"""Coursework: the task registry, the student edition (hand-out) and the grader.

    from scratchnet.coursework import check, show_tasks
    show_tasks("04")       # the tasks of notebook 04: id, title, points, where to write them
    check("T04_4")         # run the tests of task T04.4 (or "T04": all of notebook 04's)
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from ..show import show_markdown
from .tasks import TASKS, Task, task, tasks_in

WHERE = {"check": "graded cells below", "exercise": "an exercise cell below",
         "written": "an answer cell below"}


def tasks_markdown(number: str) -> str:
    """A Markdown table of notebook `number`'s tasks ('03'): where each is written and what grades
    it, with the total of its points."""
    rows = ["| task | what | points | where | graded by |", "| --- | --- | ---: | --- | --- |"]
    tasks = tasks_in(number)
    for t in tasks:
        if t.kind == "code":
            where = "<br>".join(f"`{w}`" for w in t.where)
            graded = f"`check(\"{t.grade_id}\")`"
        else:
            where = WHERE[t.kind]
            graded = "hand" if t.kind == "written" else f"cells `{t.grade_id}…`"
        rows.append(f"| `{t.id}` | {t.title} | {t.points:g} | {where} | {graded} |")
    total = sum(t.points for t in tasks)
    return "\n".join(rows) + f"\n\n{len(tasks)} tasks, {total:g} points."


def show_tasks(number: str) -> None:
    """Display notebook `number`'s task table in Jupyter; print it elsewhere."""
    show_markdown(tasks_markdown(number))


def check(selection: str) -> bool:
    """Run the task tests of `selection` — a task ("T04_4" or "T04.4"), a notebook ("T04"), or
    several ("T01 or T02") — in a fresh Python, so that the package code as it is now on disk is
    tested; print pytest's report and return whether every test passed. Equivalent to
    `make check TASK=T04_4`. A notebook's exercise, check or written task has no such tests: for
    one, it says where its test cells are and returns False."""
    marker = selection.strip().replace(".", "_")
    if not re.fullmatch(r"T\d\d(_\d+)?(\s+or\s+T\d\d(_\d+)?)*", marker):
        raise ValueError(f"check: expected a task id such as 'T04_4', a notebook such as 'T04' "
                         f"or 'T01 or T02', got {selection!r}")
    ids = re.findall(r"T\d\d(?:_\d+)?", marker)
    cells = [t for t in TASKS if t.kind != "code" and t.grade_id in ids]
    if cells and len(cells) == len(ids):
        for t in cells:
            print(f"{t.id} ({t.title}) is graded in notebook {t.notebook}: run its test cells there "
                  f"(cells {t.grade_id}…); check() runs the tests of package-code tasks")
        return False
    root = Path(__file__).resolve().parents[2]
    tests = root / "tests" / "tasks"
    if not tests.is_dir():
        raise FileNotFoundError(f"check: no task tests at {tests}")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(tests), "-m", marker, "-q", "--no-header",
         "-p", "no:cacheprovider"], cwd=root, capture_output=True, text=True, check=False)
    print(result.stdout.rstrip() or result.stderr.rstrip())
    return result.returncode == 0


__all__ = ["TASKS", "Task", "check", "show_tasks", "task", "tasks_in", "tasks_markdown"]
