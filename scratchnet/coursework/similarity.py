"""Which submissions share their task code: every pair compared task by task with copydetect
(winnowed fingerprints of the tokenised code, so renamed variables still match), the hand-out's
own code of each task — its stub, an exercise cell's scaffold — as boilerplate that matches
nobody, and an HTML report of the most similar pairs with the matching code side by side.

    pairs = similarity_report([Path("subs/alice"), …], ["alice", …], Path("similarity.html"),
                              handout=Path("build/student"), tasks={"T04.3", "T04.4"})
"""
from __future__ import annotations

import ast
import json
import tempfile
from collections.abc import Collection
from dataclasses import dataclass
from html import escape
from pathlib import Path

from ..files import atomic_write
from .handout import cell_task
from .regions import functions, without_fast_paths
from .scan import cell_python
from .tasks import TASKS

DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class Pair:
    """Two submissions' code of one task: the share of each that matches the other."""
    task: str
    first: str
    second: str
    first_share: float
    second_share: float

    def __str__(self) -> str:
        return (f"{self.task}: {self.first} {self.first_share:.0%} ~ {self.second} "
                f"{self.second_share:.0%}")


def _function_source(text: str, qualname: str) -> str | None:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    node = dict(functions(tree)).get(qualname)
    return ast.get_source_segment(text, node) if node is not None else None


def task_code(folder: Path) -> dict[str, str]:
    """A copy of the hand-out → task id → the code of that task in it: the functions a code
    task names (fast paths left out), an exercise's solution cells."""
    code: dict[str, str] = {}
    for t in TASKS:
        parts = []
        for where in t.where:
            rel, qualname = where.split(":")
            path = folder / rel
            if path.is_file() and not path.is_symlink():
                text = without_fast_paths(path.read_text(encoding="utf-8", errors="replace"), rel)
                parts.append(_function_source(text, qualname) or "")
        if parts:
            code[t.id] = "\n\n".join(parts)
    for path in sorted((folder / "notebooks").glob("*.ipynb")):
        try:
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        except (ValueError, KeyError, TypeError, OSError):
            continue
        for cell in cells:
            meta = (cell.get("metadata", {}) or {}).get("nbgrader", {}) or {}
            task_id = cell_task(meta.get("grade_id"))
            if meta.get("solution") and task_id and cell.get("cell_type") == "code":
                source = cell_python("".join(cell.get("source", "")))
                code[task_id] = code.get(task_id, "") + source + "\n\n"
    return code


def similarity_report(submissions: list[Path], names: list[str], out: Path, handout: Path,
                      threshold: float = DEFAULT_THRESHOLD,
                      tasks: Collection[str] | None = None) -> list[Pair]:
    """Compare the submissions' task code pairwise, task by task (those of `tasks`, or all),
    with the hand-out `handout`'s code as boilerplate; write an HTML report of the pairs whose
    shared code passes `threshold` (a share of either file) to `out` (its folder made if need
    be): the pairs of submissions, then each pair of task code side by side with what matches
    marked; → those pairs, the most similar first."""
    from copydetect import CopyDetector

    wanted = set(tasks) if tasks is not None else None
    with tempfile.TemporaryDirectory(prefix="scratchnet-similarity-") as tmp:
        base = Path(tmp)
        for folder, name in ((handout, None), *zip(submissions, names)):
            for task_id, text in task_code(folder).items():
                if wanted is not None and task_id not in wanted:
                    continue
                target = (base / "handout" if name is None else base / "subs" / name) \
                    / f"{task_id.replace('.', '_')}.py"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
        compared = sorted(p.name for p in (base / "subs").iterdir()) \
            if (base / "subs").is_dir() else []
        found: list[tuple[Pair, str, str]] = []
        if len(compared) >= 2:
            detector = CopyDetector(
                test_dirs=[str(base / "subs")], ref_dirs=[str(base / "subs")],
                boilerplate_dirs=[str(base / "handout")] if (base / "handout").is_dir() else [],
                extensions=["py"], display_t=threshold, same_name_only=True, ignore_leaf=True,
                autoopen=False, silent=True, out_file=str(base / "unused.html"))
            detector.run()
            for first_share, second_share, first, second, code_1, code_2, _ in \
                    detector.get_copied_code_list():
                a, b = Path(first), Path(second)
                if a.parent.name > b.parent.name:         # the two names in alphabetical order
                    a, b, first_share, second_share, code_1, code_2 = \
                        b, a, second_share, first_share, code_2, code_1
                found.append((Pair(a.stem.replace("_", ".", 1), a.parent.name, b.parent.name,
                                   float(first_share), float(second_share)), code_1, code_2))
    found.sort(key=lambda f: (-max(f[0].first_share, f[0].second_share), f[0].task))
    page = _page(found, len(compared), sorted(wanted) if wanted is not None else None, threshold)
    atomic_write(out, lambda f: f.write(page), text=True)
    return [pair for pair, _, _ in found]


_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:1em}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:85%}
.highlight-red,.highlight-green{background:#ffd9a8}"""


def _page(found: list[tuple[Pair, str, str]], submissions: int, tasks: list[str] | None,
          threshold: float) -> str:
    """The report: a summary, the pairs of submissions, then each task's code side by side
    (copydetect marks the matching code, already escaped)."""
    scope = ", ".join(tasks) if tasks is not None else "every task"
    parts = ["<!doctype html><meta charset='utf-8'><title>Similarity of task code</title>",
             f"<style>{_STYLE}</style><h1>Similarity of task code</h1>",
             (f"<p>{submissions} submission(s) with task code, compared task by task "
              f"({escape(scope)}); the hand-out's own code matches nobody. Listed: the tasks "
              f"where more than {threshold:.0%} of one submission's code matches the other's.</p>")]
    if submissions < 2:
        parts.append("<p>Nothing to compare: fewer than two submissions have task code.</p>")
    elif not found:
        parts.append("<p>No pair of submissions shares that much code in any task.</p>")
    else:
        parts.append("<h2>Pairs of submissions</h2><table><tr><th>submissions</th>"
                     "<th>tasks shared</th><th>mean share</th></tr>")
        for first, second, n, share in by_submissions([pair for pair, _, _ in found]):
            parts.append(f"<tr><td>{escape(first)} ~ {escape(second)}</td><td>{n}</td>"
                         f"<td>{share:.0%}</td></tr>")
        parts.append("</table><h2>Task code side by side</h2>")
        for pair, code_1, code_2 in found:
            parts.append(
                f"<h3>{escape(pair.task)}: {escape(pair.first)} ({pair.first_share:.0%} shared) ~ "
                f"{escape(pair.second)} ({pair.second_share:.0%} shared)</h3><div class='pair'>"
                f"<div><b>{escape(pair.first)}</b><pre>{code_1}</pre></div>"
                f"<div><b>{escape(pair.second)}</b><pre>{code_2}</pre></div></div>")
    return "\n".join(parts) + "\n"


def by_submissions(pairs: list[Pair]) -> list[tuple[str, str, int, float]]:
    """The task pairs grouped by the two submissions: (first, second, how many tasks match,
    the mean of the larger share over them), the pairs with most matching tasks first."""
    groups: dict[tuple[str, str], list[float]] = {}
    for p in pairs:
        key = tuple(sorted((p.first, p.second)))
        groups.setdefault(key, []).append(max(p.first_share, p.second_share))
    rows = [(a, b, len(shares), sum(shares) / len(shares)) for (a, b), shares in groups.items()]
    return sorted(rows, key=lambda r: (-r[2], -r[3], r[0], r[1]))
