"""Check the registry's `depends` in full: for every code task, grade the solution with only that
task blanked (task tests and every notebook), and once more with every exercise blanked; each
variant must lose its blanked tasks and no task outside their registry dependents (dependents
that still pass are listed: the registry may declare more than a check uses).

    .venv/bin/python tools/check_blanks.py            # about 15 minutes on 2 cores
    .venv/bin/python tools/check_blanks.py T04.2 T06.1

CI runs the task-test half of this for every task and the notebook half for a few
(tests/test_grade.py); run this after changing a notebook's graded cells or a task's code.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from scratchnet.coursework.grade import grade
from scratchnet.coursework.handout import write_handout
from scratchnet.coursework.tasks import TASKS, dependents


def variants(ids: list[str]) -> dict[str, set[str]]:
    """variant name → the tasks it blanks."""
    out = {task_id: {task_id} for task_id in ids}
    if not ids or len(ids) == len([t for t in TASKS if t.kind == "code"]):
        out["exercises"] = {t.id for t in TASKS if t.kind == "exercise"}
    return out


def main(argv: list[str]) -> int:
    ids = argv or [t.id for t in TASKS if t.kind == "code"]
    plan = variants(ids)
    with tempfile.TemporaryDirectory(prefix="check-blanks-") as tmp:
        folders = []
        for name, blank in plan.items():
            folders.append(write_handout(Path(tmp) / name.replace(".", "_"), blank=blank))
        results = grade(folders, log=lambda line: print(line, file=sys.stderr, flush=True))
    wrong = 0
    for (name, blank), result in zip(plan.items(), results):
        allowed = set(blank).union(*(dependents(t) for t in blank))
        lost = {t for t, s in result.scores.items()
                if s.max is not None and s.points is not None and s.points < s.max}
        ok = blank <= lost <= allowed and not result.errors
        wrong += not ok
        kept = sorted(allowed - lost)
        print(f"{'ok' if ok else 'WRONG':5} {name:10} lost {len(lost):2} tasks"
              + (f"; not allowed: {sorted(lost - allowed)}" if lost - allowed else "")
              + (f"; blank but scored: {sorted(blank - lost)}" if blank - lost else "")
              + (f"; dependents that still passed: {kept}" if kept else "")
              + (f"; errors: {result.errors}" if result.errors else ""))
    print(f"{len(plan) - wrong} of {len(plan)} variants lose their blanked tasks and only "
          "tasks the registry says depend on them")
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
