"""Which submissions share their task code: every pair compared task by task with copydetect
(winnowed fingerprints of the tokenised code, so renamed variables still match), the hand-out's
own code of each task — its stub, an exercise cell's scaffold — as boilerplate that matches
nobody, and an HTML report of the most similar pairs with the matching code side by side.

    pairs = similarity_report([Path("subs/alice"), …], ["alice", …], Path("similarity.html"))
"""
from __future__ import annotations

import ast
import json
import tempfile
from dataclasses import dataclass
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
                      threshold: float = DEFAULT_THRESHOLD) -> list[Pair]:
    """Compare the submissions' task code pairwise, task by task, with the hand-out `handout`'s
    code as boilerplate; write copydetect's HTML report of the pairs whose shared code passes
    `threshold` (a share of either file) to `out` (its folder made if need be); → those pairs,
    the most similar first."""
    from copydetect import CopyDetector

    with tempfile.TemporaryDirectory(prefix="scratchnet-similarity-") as tmp:
        base = Path(tmp)
        for name, folder in zip(names, submissions):
            for task_id, text in task_code(folder).items():
                target = base / "subs" / name / f"{task_id.replace('.', '_')}.py"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
        for task_id, text in task_code(handout).items():
            target = base / "handout" / f"{task_id.replace('.', '_')}.py"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        compared = sorted(p.name for p in (base / "subs").iterdir()) \
            if (base / "subs").is_dir() else []
        if len(compared) < 2:
            atomic_write(out, lambda f: f.write(
                "<!doctype html><meta charset='utf-8'><title>Similarity</title><p>Nothing to "
                f"compare: task code was found in {len(compared)} submission(s).</p>\n"),
                text=True)
            return []
        detector = CopyDetector(test_dirs=[str(base / "subs")], ref_dirs=[str(base / "subs")],
                                boilerplate_dirs=[str(base / "handout")], extensions=["py"],
                                display_t=threshold, same_name_only=True, ignore_leaf=True,
                                autoopen=False, silent=True, out_file=str(base / "report.html"))
        detector.run()
        pairs = []
        for first_share, second_share, first, second, *_ in detector.get_copied_code_list():
            a, b = Path(first), Path(second)
            pairs.append(Pair(a.stem.replace("_", ".", 1), a.parent.name, b.parent.name,
                              float(first_share), float(second_share)))
        detector.generate_html_report()
        report = (base / "report.html").read_bytes()
    atomic_write(out, lambda f: f.write(report))
    return sorted(pairs, key=lambda p: -max(p.first_share, p.second_share))


def by_submissions(pairs: list[Pair]) -> list[tuple[str, str, int, float]]:
    """The task pairs grouped by the two submissions: (first, second, how many tasks match,
    the mean of the larger share over them), the pairs with most matching tasks first."""
    groups: dict[tuple[str, str], list[float]] = {}
    for p in pairs:
        key = tuple(sorted((p.first, p.second)))
        groups.setdefault(key, []).append(max(p.first_share, p.second_share))
    rows = [(a, b, len(shares), sum(shares) / len(shares)) for (a, b), shares in groups.items()]
    return sorted(rows, key=lambda r: (-r[2], -r[3], r[0], r[1]))
