"""Coursework: the task registry, the student edition (hand-out) and the grader.

    from scratchnet.coursework import show_tasks
    show_tasks("03")       # the tasks of notebook 03: id, title, points, where to write them
"""
from __future__ import annotations

from .tasks import TASKS, Task, task, tasks_in

KIND_LABELS = {"code": "package code", "check": "graded check", "exercise": "exercise",
               "written": "written answer"}


def tasks_markdown(number: str) -> str:
    """A Markdown table of notebook `number`'s tasks ('03'), with the total of its points."""
    rows = ["| task | what | points | kind | where |", "| --- | --- | ---: | --- | --- |"]
    tasks = tasks_in(number)
    for t in tasks:
        where = "<br>".join(f"`{w}`" for w in t.where) or "this notebook"
        rows.append(f"| `{t.id}` | {t.title} | {t.points:g} | {KIND_LABELS[t.kind]} | {where} |")
    total = sum(t.points for t in tasks)
    return "\n".join(rows) + f"\n\n{len(tasks)} tasks, {total:g} points."


def show_tasks(number: str) -> None:
    """Display notebook `number`'s task table in Jupyter; print it elsewhere."""
    from IPython import get_ipython
    from IPython.display import Markdown, display

    text = tasks_markdown(number)
    if get_ipython() is None:
        print(text)
    else:
        display(Markdown(text))


__all__ = ["TASKS", "Task", "show_tasks", "task", "tasks_in", "tasks_markdown"]
