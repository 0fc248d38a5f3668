"""How long the grader takes per submission: a class of copies of the hand-out — finished (the
reference solutions), half done (notebooks 01–04's tasks), untouched — graded in one run, with
the seconds per submission, their median, and where the time goes (the tests, each notebook).

    python benchmarks/grade_speed.py                    # 2 of each kind, --jobs 2
    python benchmarks/grade_speed.py --each 1 --jobs 1

The figure the README states is the median of a default run on 2 cores.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from scratchnet.coursework.grade import grade
from scratchnet.coursework.handout import write_handout
from scratchnet.coursework.tasks import TASKS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--each", type=int, default=2, help="submissions of each kind (2)")
    parser.add_argument("--jobs", type=int, default=2, help="the grader's --jobs (2)")
    args = parser.parse_args(argv)
    half = {t.id for t in TASKS if t.number > "04"}
    kinds = {"finished": set(), "half done": half, "untouched": None}
    with tempfile.TemporaryDirectory(prefix="scratchnet-grade-speed-") as tmp:
        subs, kind_of = [], {}
        for kind, blank in kinds.items():
            for i in range(args.each):
                name = f"{kind.replace(' ', '-')}-{i + 1}"
                folder = Path(tmp) / name
                subs.append(write_handout(folder) if blank is None
                            else write_handout(folder, blank=blank))
                kind_of[name] = kind
        began = time.monotonic()
        results = grade(subs, jobs=args.jobs,
                        log=lambda line: print(line, file=sys.stderr, flush=True))
        wall = time.monotonic() - began
    print(f"{len(results)} submissions, --jobs {args.jobs}: {wall:.0f} s in all, "
          f"{wall / len(results):.1f} s per submission")
    seconds = [r.seconds for r in results]
    print(f"per submission (first unit started → last finished): median {statistics.median(seconds):.1f} s, "
          f"min {min(seconds):.1f} s, max {max(seconds):.1f} s")
    for r in results:
        units = ", ".join(f"{label} {s:.0f} s" for label, s in
                          sorted(r.timings.items(), key=lambda kv: -kv[1])[:4])
        print(f"  {r.name:<14} {kind_of[r.name]:<10} {r.total:5.1f}/{r.max:g}  {r.seconds:5.1f} s"
              f"  ({units})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
