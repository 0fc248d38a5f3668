"""What the grader hands back, written as each submission is graded: a Markdown file per
submission for the student, and a row of the class's CSV, so that an interrupted run keeps what
it had done and `--resume` goes on from there.

    with ClassReport("grades.csv", feedback_dir="feedback") as report:
        done = report.done()                 # submissions already in the CSV
        report.add(result)                   # one row, one file, on disk at once

(`ClassReport(tasks, csv, feedback, resume=True)` keeps the rows of the CSV already there.)
"""
from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Self

from ..files import atomic_write
from .tasks import Task


def columns(tasks: Sequence[Task]) -> list[str]:
    """The CSV's header: submission, a column per task graded (registry order), total, max,
    flags."""
    return ["submission", *(t.id for t in tasks), "total", "max", "flags"]


def csv_row(result, tasks: Sequence[Task]) -> list[str]:
    """A SubmissionResult as a row under `columns(tasks)` (a task graded by hand: empty)."""
    scores = result.scores
    return [result.name, *("" if scores[t.id].points is None else f"{scores[t.id].points:g}"
                           for t in tasks),
            f"{result.total:g}", f"{result.max:g}", "; ".join(map(str, result.flags))]


def table_text(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A CSV table as text: the header, then the rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def feedback_name(name: str) -> str:
    """A file name for submission `name`: its characters that are safe, '.md' added."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "submission"
    return f"{safe}.md"


def grouped(reasons: Sequence[str]) -> list[str]:
    """The reasons, those of several tests with the same message said once: "test_a, test_b
    (2 tests): message" (a blank task fails all its tests with its one stub message)."""
    by_message: dict[str, list[str]] = {}
    for reason in reasons:
        label, sep, message = reason.partition(": ")
        key = message if sep and label.startswith("test_") and " " not in label else reason
        by_message.setdefault(key, []).append(label if key == message else "")
    out = []
    for message, labels in by_message.items():
        if len(labels) == 1 or not all(labels):
            out += [f"{labels[0]}: {message}"] if labels[0] else [message] * len(labels)
        else:
            out.append(f"{', '.join(labels)} ({len(labels)} tests): {message}")
    return out


def feedback_markdown(result) -> str:
    """The student's feedback: the total, what was flagged, a table of points per task, then
    for each task that lost points every failing check's full message (with its case and hint)."""
    lines = [f"# Feedback: {result.name}", "",
             (f"**{result.total:g} of {result.max:g} points** graded automatically; written "
              "answers are graded by hand."), ""]
    if result.flags:
        lines += ["## Flagged", "",
                  "The grader found code that it does not accept; the tasks it touches score 0:", ""]
        lines += [f"- `{f.file}`, line {f.line}: {f.kind} `{f.name}`"
                  + (f" (task {f.task})" if f.task else "") for f in result.flags]
        lines.append("")
    if result.errors:
        lines += ["## About the submission", ""] + [f"- {e}" for e in result.errors] + [""]
    lines += ["## Points", "", "| task | | points | max |", "| --- | --- | ---: | ---: |"]
    for s in result.scores.values():
        got = "by hand" if s.points is None else f"{s.points:g}"
        top = "" if s.max is None else f"{s.max:g}"
        lines.append(f"| {s.task.id} | {s.task.title} | {got} | {top} |")
    lost = [s for s in result.scores.values() if s.points is not None and s.points < s.task.points]
    if lost:
        lines += ["", "## What lost points", ""]
        for s in lost:
            lines += [f"### {s.task.id} {s.task.title}: {s.points:g} of {s.task.points:g}", ""]
            for reason in grouped(s.reasons):
                head, _, rest = reason.partition("\n")
                lines.append(f"- {head}")
                if rest.strip():
                    lines += ["", "  ```", *("  " + r for r in rest.splitlines()), "  ```", ""]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


class ClassReport:
    """The CSV of a class and its feedback folder, written a submission at a time."""

    def __init__(self, tasks: Sequence[Task], csv_path: str | os.PathLike | None,
                 feedback_dir: str | os.PathLike | None = None, *, resume: bool = False) -> None:
        self.tasks, self.resume = list(tasks), resume
        self.header = columns(self.tasks)
        self.csv = Path(csv_path) if csv_path is not None else None
        self.feedback = Path(feedback_dir) if feedback_dir is not None else None
        self.rows: list[list[str]] = []

    def __enter__(self) -> Self:
        """Read the rows to keep (with `resume`), and write the header and make the feedback
        folder now, so that an unwritable place stops the run before anything is graded."""
        if self.resume and self.csv is not None and self.csv.exists():
            self.rows = self._read()
        if self.feedback is not None:
            try:
                self.feedback.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise ValueError(f"--feedback {self.feedback}: cannot make this folder "
                                 f"({e.strerror or e})") from None
        if self.csv is not None:
            self._write()
        return self

    def __exit__(self, *exc) -> None:
        return None

    def _read(self) -> list[list[str]]:
        """The rows of an earlier run of the same tasks (a row cut short is dropped)."""
        with self.csv.open(newline="", encoding="utf-8") as f:
            table = list(csv.reader(f))
        if not table or table[0] != self.header:
            raise ValueError(f"{self.csv} is not a table of these tasks (its header is "
                             f"{', '.join(table[0][:4]) if table else 'missing'} …); give "
                             "another --csv, the same --tasks as before, or remove it")
        return [row for row in table[1:] if len(row) == len(self.header)]

    def done(self) -> set[str]:
        return {row[0] for row in self.rows}

    def add(self, result) -> None:
        """Write `result`'s row (replacing an earlier one of that submission) and its feedback
        file, each atomically: a file on disk is always whole."""
        self.rows = [row for row in self.rows if row[0] != result.name] + [
            csv_row(result, self.tasks)]
        if self.csv is not None:
            self._write()
        if self.feedback is not None:
            atomic_write(self.feedback / feedback_name(result.name),
                         lambda f: f.write(feedback_markdown(result)), text=True)

    def _write(self) -> None:
        text = table_text(self.header, self.rows)
        atomic_write(self.csv, lambda f: f.write(text), text=True)
