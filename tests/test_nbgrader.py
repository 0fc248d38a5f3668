"""The notebooks work with the real nbgrader: `generate_assignment` accepts them and `autograde`
gives the solutions full marks on every autograded cell and the untouched hand-out zero.

generate_assignment runs on every notebook; autograde on a subset, notebooks 01 and 04, which
keeps this under a minute: the graded cells of every notebook are also run by tests/test_grade.py
(our grader reads the same cells and metadata).
nbgrader is a dev dependency: without it this test fails, it is not skipped.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ("01_modules_and_the_chain_rule", "04_convolution_with_unfold")
ASSIGNMENT = "scratchnet"
COURSE = "scratchnet-course"
# nbgrader runs the `alembic` command of its environment, which need not be on PATH (make test
# runs .venv/bin/python without activating the environment)
BIN = str(Path(sys.executable).parent)


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ.get("PATH", "")}
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args, "--force"], cwd=course,
                            env=env, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def package(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


@pytest.fixture(scope="module")
def gradebook(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", BIN + os.pathsep + os.environ.get("PATH", ""))
        return _autograde(tmp_path_factory)


def _autograde(tmp_path_factory):
    from nbgrader.api import Gradebook

    from scratchnet.coursework.handout import write_handout

    base = tmp_path_factory.mktemp("nbgrader")
    handout = write_handout(base / "handout")
    course = base / "course"
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.course_id = {COURSE!r}\n"
        "c.Execute.timeout = 600\n")
    for name in NOTEBOOKS:      # the assignment holds the notebooks only, flattened
        shutil.copyfile(ROOT / "notebooks" / f"{name}.ipynb",
                        course / "source" / ASSIGNMENT / f"{name}.ipynb")
    nbgrader(course, "generate_assignment", ASSIGNMENT)
    released = course / "release" / ASSIGNMENT
    assert sorted(p.stem for p in released.glob("*.ipynb")) == sorted(NOTEBOOKS)

    # two students: the solutions, and the hand-out untouched. The kernel runs in the submission's
    # folder (first on sys.path), so each imports the package beside its notebooks.
    for student, notebooks, pkg in (("solution", ROOT / "notebooks", ROOT / "scratchnet"),
                                    ("handout", released, handout / "scratchnet")):
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        for name in NOTEBOOKS:
            shutil.copyfile(notebooks / f"{name}.ipynb", folder / f"{name}.ipynb")
        package(pkg, folder / "scratchnet")
    # the hand-out's notebooks are nbgrader's own release, the same as write_handout's
    for name in NOTEBOOKS:
        assert (handout / "notebooks" / f"{name}.ipynb").is_file()
    nbgrader(course, "autograde", ASSIGNMENT)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE) as gb:
        scores = {}
        for student in ("solution", "handout"):
            for name in NOTEBOOKS:
                nb = gb.find_submission_notebook(name, ASSIGNMENT, student)
                for grade in nb.grades:
                    scores[student, grade.cell.name] = (
                        grade.cell.cell_type, grade.auto_score, grade.max_score)
    return scores


def autograded(scores, student):
    return {cell: (auto, top) for (who, cell), (kind, auto, top) in scores.items()
            if who == student and kind == "code"}


def test_nbgrader_gives_the_solutions_full_marks(gradebook):
    cells = autograded(gradebook, "solution")
    assert {c[:3] for c in cells} == {"T01", "T04"}
    assert {c: a for c, (a, top) in cells.items() if a != top} == {}


def test_nbgrader_gives_the_untouched_handout_zero(gradebook):
    cells = autograded(gradebook, "handout")
    assert cells and {c: a for c, (a, top) in cells.items() if a != 0} == {}


def test_written_answers_wait_for_a_person(gradebook):
    written = {cell: auto for (who, cell), (kind, auto, top) in gradebook.items()
               if who == "solution" and kind == "markdown"}
    assert written and all(auto is None for auto in written.values())


def test_generate_assignment_accepts_every_notebook(tmp_path):
    """Every notebook of the series goes through nbgrader's generate_assignment, and its release
    equals our hand-out's notebook (nbgrader's ClearSolutions and ClearHiddenTests), less the
    instructor-only cells our hand-out leaves out."""
    import json

    from scratchnet.coursework.handout import instructor_only, write_handout
    from scratchnet.coursework.tasks import NOTEBOOKS

    course = tmp_path / "course"
    source = course / "source" / ASSIGNMENT
    source.mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.course_id = {COURSE!r}\n")
    names = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert names == [f"{number}_{stem.split('_', 1)[1]}" for number, stem in
                     sorted({"00": "00_welcome", **NOTEBOOKS}.items())]
    for name in names:
        shutil.copyfile(ROOT / "notebooks" / f"{name}.ipynb", source / f"{name}.ipynb")
    nbgrader(course, "generate_assignment", ASSIGNMENT)
    handout = write_handout(tmp_path / "handout")
    for name in names:
        released = json.loads((course / "release" / ASSIGNMENT / f"{name}.ipynb").read_text())
        released["cells"] = [c for c in released["cells"] if not instructor_only(c)]
        ours = json.loads((handout / "notebooks" / f"{name}.ipynb").read_text())
        assert sources(released) == sources(ours), name


def sources(nb: dict) -> list[str]:
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in nb["cells"]]
