"""The hand-out, run as a student runs it: every notebook top to bottom, in a kernel that imports
the hand-out's own package.

- Filled with the reference solutions (`write_handout(blank=())`: the path a student's finished
  work takes, fast paths absent), every notebook runs with no cell error at all — not only the
  graded cells.
- Untouched (every task blank), a notebook's first error is a stub: a `NotImplementedError`
  whose message names a task, or one raised by a blanked solution cell of a task — never an
  earlier crash.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from scratchnet.coursework.handout import cell_task, write_handout
from scratchnet.data.paths import default_data_dir

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
TASK_ID = re.compile(r"\bT\d\d\.\d+\b")
CELL_TIMEOUT = 600


@pytest.fixture(scope="module")
def editions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("editions")
    return {"filled": write_handout(root / "filled", blank=()),
            "blank": write_handout(root / "blank")}


# a lesson's budget, smaller: the cell tagged "parameters" (papermill's convention) is followed by
# this one. The hand-out's layers have no fast paths: notebook 12's sweep of 20 trainings would
# take over 2 minutes at the lesson's budget, and what is tested here is that every cell runs.
SMALLER = {"12_choosing_hyperparameters.ipynb": "N_TRAIN, EPOCHS = 512, 1"}


def run(edition: Path, name: str, monkeypatch: pytest.MonkeyPatch
        ) -> tuple[nbformat.NotebookNode, CellExecutionError | None]:
    """Execute notebook `name` of `edition` in place of a student: the kernel imports the
    edition's package (PYTHONPATH) and shares the instructor's course data folder, built once."""
    monkeypatch.setenv("PYTHONPATH", str(edition))
    monkeypatch.setenv("SCRATCHNET_DATA_DIR", str(default_data_dir()))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.delenv("MPLBACKEND", raising=False)
    path = edition / "notebooks" / name
    nb = nbformat.read(path, as_version=4)
    if name in SMALLER:
        at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
        nb.cells.insert(at + 1, nbformat.v4.new_code_cell(SMALLER[name]))
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    except CellExecutionError as error:
        return nb, error
    return nb, None


def first_error(nb: nbformat.NotebookNode) -> tuple[int, dict, dict]:
    """(index, cell, error output) of the first cell whose outputs hold an error."""
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return i, cell, output
    raise AssertionError("the notebook stopped, but no cell holds an error output")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_the_filled_handout_runs_every_cell(editions, name, monkeypatch):
    nb, error = run(editions["filled"], name, monkeypatch)
    if error is not None:
        index, cell, output = first_error(nb)
        pytest.fail(f"{name}, cell {index} of the hand-out filled with the reference solutions "
                    f"fails: {output['ename']}: {output['evalue']}\n--- cell source:\n"
                    f"{cell.source}")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_the_blank_handout_stops_first_at_a_stub(editions, name, monkeypatch):
    nb, error = run(editions["blank"], name, monkeypatch)
    if error is None:
        return
    index, cell, output = first_error(nb)
    meta = cell.get("metadata", {}).get("nbgrader", {})
    stub_cell = bool(meta.get("solution")) and cell_task(meta.get("grade_id")) is not None
    named = TASK_ID.search(output["evalue"])
    assert output["ename"] == "NotImplementedError" and (named or stub_cell), (
        f"{name}, cell {index} of the untouched hand-out fails before any stub: "
        f"{output['ename']}: {output['evalue']}\n--- cell source:\n{cell.source}")
