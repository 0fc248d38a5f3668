"""The committed notebooks: executed top to bottom without errors, free of timing metadata and of
this machine's paths, numbered 00..NN, and each a lesson that states its learning objectives,
turns autograd off and imports scratchnet instead of redefining its classes.

Outputs themselves are compared by nbval (`make test`); this file checks what nbval does not.
"""
from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NAME = re.compile(r"(\d{2})_[a-z0-9_]+\.ipynb")
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[\w.-]+/){2,}")
OBJECTIVES = re.compile(r"^#+\s*learning objectives\b", re.IGNORECASE | re.MULTILINE)
IMPORTS_SCRATCHNET = re.compile(r"^\s*(?:import scratchnet\b|from scratchnet\b)", re.MULTILINE)
CLASS_DEFINITION = re.compile(r"^\s*class\s+(\w+)", re.MULTILINE)
TIMING_KEYS = ("execution", "ExecuteTime")


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def joined(value: str | list[str]) -> str:
    return "".join(value) if isinstance(value, list) else value


def code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def searchable_text(nb: dict) -> Iterator[tuple[str, str]]:
    """(where, text) for every cell source and every text output; image payloads are skipped."""
    for i, cell in enumerate(nb["cells"]):
        yield f"cell {i} source", joined(cell["source"])
        for output in cell.get("outputs", []):
            if "text" in output:
                yield f"cell {i} {output.get('name', 'stream')}", joined(output["text"])
            for mime, value in output.get("data", {}).items():
                if not mime.startswith("image/"):
                    yield f"cell {i} {mime}", value if isinstance(value, str) else json.dumps(value)


@lru_cache(maxsize=1)
def scratchnet_class_names() -> frozenset[str]:
    """Every class defined anywhere in the package, read from the source (nothing is imported)."""
    names: set[str] = set()
    for path in (ROOT / "scratchnet").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names.update(node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef))
    return frozenset(names)


def test_notebooks_are_numbered_00_to_nn():
    assert NOTEBOOKS, "no notebooks in notebooks/"
    bad = [p.name for p in NOTEBOOKS if not NAME.fullmatch(p.name)]
    assert not bad, f"notebook names must look like 04_convolution_with_unfold.ipynb: {bad}"
    numbers = [int(NAME.fullmatch(p.name).group(1)) for p in NOTEBOOKS]
    assert numbers == list(range(len(numbers))), (
        f"notebook numbers must run 00, 01, … without gaps or repeats; got {numbers}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_executed_top_to_bottom_without_errors(path):
    cells = code_cells(load(path))
    assert cells, f"{path.name} has no code cells"
    counts = [c["execution_count"] for c in cells]
    assert counts == list(range(1, len(cells) + 1)), (
        f"{path.name}: commit it executed top to bottom in a fresh kernel (make notebooks); "
        f"execution counts are {counts}")
    assert any(c["outputs"] for c in cells), f"{path.name} was committed without outputs"
    errors = [i for i, c in enumerate(cells) if any(o["output_type"] == "error" for o in c["outputs"])]
    assert not errors, f"{path.name}: code cells {errors} have error outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_execution_timing_metadata(path):
    timed = [i for i, c in enumerate(load(path)["cells"])
             if any(k in c.get("metadata", {}) for k in TIMING_KEYS)]
    assert not timed, (f"{path.name}: cells {timed} carry execution timing metadata; "
                       "run tools/strip_timing.py on it")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_absolute_paths(path):
    hits = [f"{where}: {match.group(0)!r}" for where, text in searchable_text(load(path))
            for match in ABSOLUTE_PATH.finditer(text)]
    assert not hits, f"{path.name} shows paths of the machine it ran on:\n" + "\n".join(hits)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_is_a_lesson_on_scratchnet(path):
    nb = load(path)
    cells = nb["cells"]
    first_code = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
    intro = "\n".join(joined(c["source"]) for c in cells[:first_code])
    assert OBJECTIVES.search(intro), (
        f"{path.name} must open with a 'Learning objectives' heading before its first code cell")
    setup = joined(cells[first_code]["source"])
    assert "torch.set_grad_enabled(False)" in setup, (
        f"{path.name}: the first code cell must turn autograd off with torch.set_grad_enabled(False)")
    code = "\n".join(joined(c["source"]) for c in code_cells(nb))
    assert IMPORTS_SCRATCHNET.search(code), f"{path.name} never imports scratchnet"
    redefined = sorted(set(CLASS_DEFINITION.findall(code)) & scratchnet_class_names())
    assert not redefined, (f"{path.name} redefines scratchnet classes {redefined}; import them "
                           "and display their code with scratchnet.show.show_source instead")


FAST_PATH_LESSON = "11_fast_paths.ipynb"
FAST_PATH_CODE = ('impl == "fast"', "channels_last", "winograd", "Winograd", "_forward_phased",
                  "_backward_phased", "phases_interleaved", "FlatMoments", "lever_on")


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name != FAST_PATH_LESSON],
                         ids=lambda p: p.name)
def test_lessons_display_the_reference_code_only(path):
    """The code a lesson displays (`show_source`'s Markdown outputs) is the reference its
    derivation maps onto: no fast-path dispatch, channels-last layout, Winograd or phase
    interleaving — those are derived in the fast-path lesson."""
    for i, cell in enumerate(load(path)["cells"]):
        for output in cell.get("outputs", []):
            shown = joined(output.get("data", {}).get("text/markdown", ""))
            found = [word for word in FAST_PATH_CODE if word in shown]
            assert not found, f"{path.name}, cell {i} displays fast-path code ({found})"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_task_table_and_title_name_the_notebook_itself(path):
    """A notebook lists its own tasks and carries its own number: renumbering moves both."""
    number = NAME.fullmatch(path.name).group(1)
    nb = load(path)
    title = joined(nb["cells"][0]["source"]).splitlines()[0]
    assert title.startswith(f"# {number} ·"), f"{path.name} is titled {title!r}"
    for cell in code_cells(nb):
        for listed in re.findall(r"show_tasks\(\"(\d\d)\"\)", joined(cell["source"])):
            assert listed == number, f"{path.name} lists the tasks of notebook {listed}"
