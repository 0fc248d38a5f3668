"""Marker regions: find, strip and replace the marked regions of package code and notebook cells.

The package marks what a student writes with a pair of comment lines, each alone on its line
(nbgrader's words), inside a function; `### BEGIN FAST PATH` / `### END FAST PATH` mark code the
student edition drops. In notebook cells nbgrader's own rules apply: a line *containing*
`BEGIN SOLUTION` opens a solution region, one containing `BEGIN HIDDEN TESTS` a hidden-test region.

- `strip_markers(text)`: the marker lines removed, the code between kept;
- `without_fast_paths(text)`: FAST PATH regions removed (the grader applies it to submissions);
- `reference_source(text)`: FAST PATH regions removed and the other marker lines dropped: the code
  as the student edition has it, solutions kept (`show_source` uses it);
- `find_regions(text, name)`: the marked regions of a `.py` file, or a `MarkerError` (a ValueError
  naming the file and line) for a nested, unbalanced or misspelled marker;
- `blank_python(text, name, claims, blank)`: the student edition of one package file;
- `clear_solution(source, code)`, `clear_hidden_tests(source)`, `strip_solution_markers(source)`:
  nbgrader's ClearSolutions / ClearHiddenTests on one cell's source.
"""
from __future__ import annotations

import ast
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .tasks import Task

SOLUTION, FAST_PATH, HIDDEN_TESTS = "SOLUTION", "FAST PATH", "HIDDEN TESTS"
KINDS = (SOLUTION, FAST_PATH, HIDDEN_TESTS)
# The exact marker lines (stripped) of the package's .py files: "### BEGIN SOLUTION", …
MARKER_LINES = {f"### {edge} {kind}": (kind, edge == "BEGIN")
                for kind in KINDS for edge in ("BEGIN", "END")}
# A comment that starts like a marker but is not exactly one ("## BEGIN SOLUTION", "### end solution")
_NEAR_MISS = re.compile(r"#+\s*(BEGIN|END)[\s_-]*(SOLUTION|FAST[\s_-]*PATH|HIDDEN[\s_-]*TESTS?)",
                        re.IGNORECASE)

# nbgrader's stubs (nbgrader/preprocessors/clearsolutions.py, ClearSolutions.code_stub["python"]
# and .text_stub) and delimiters (matched anywhere in a line, as nbgrader does)
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"
NB_BEGIN_SOLUTION, NB_END_SOLUTION = "BEGIN SOLUTION", "END SOLUTION"
NB_BEGIN_HIDDEN, NB_END_HIDDEN = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"


class MarkerError(ValueError):
    """A marker that cannot be paired, is nested, misspelled or misplaced."""


@dataclass(frozen=True)
class Region:
    """One marked region of a text split on "\\n": `begin` and `end` are the 0-based indices of its
    BEGIN and END marker lines, `indent` the BEGIN line's indentation."""
    kind: str
    begin: int
    end: int
    indent: str

    def body(self, lines: Sequence[str]) -> list[str]:
        return list(lines[self.begin + 1:self.end])


def marker(line: str) -> tuple[str, bool] | None:
    """(kind, is_begin) when `line` is a package marker line (surrounding blanks ignored)."""
    return MARKER_LINES.get(line.strip())


def strip_markers(text: str) -> str:
    """`text` without its marker lines (`### BEGIN SOLUTION`, `### END FAST PATH`, …); the code
    between them stays."""
    lines = text.split("\n")
    kept = [line for line in lines if marker(line) is None]
    return text if len(kept) == len(lines) else "\n".join(kept)


def without_fast_paths(text: str, name: str = "<text>") -> str:
    """`text` without its FAST PATH regions, marker lines included; other regions as they are.
    Raises MarkerError as `find_regions` does."""
    regions = [r for r in find_regions(text, name) if r.kind == FAST_PATH]
    return replace_regions(text, regions, lambda region, body: []) if regions else text


def reference_source(text: str, name: str = "<text>") -> str:
    """`text` without its FAST PATH regions (marker lines included) and without the marker lines
    of its other regions: the reference code, as the student edition holds it with solutions."""
    return strip_markers(without_fast_paths(text, name))


def find_regions(text: str, name: str = "<text>") -> list[Region]:
    """The marked regions of a package file, in order. Raises MarkerError (naming `name` and the
    1-based line) for a nested or unbalanced marker, an END of another kind, BEGIN and END at
    different indentations, or a comment that looks like a marker but is not exactly one."""
    regions: list[Region] = []
    open_: tuple[str, int, str] | None = None
    for i, line in enumerate(text.split("\n")):
        found = marker(line)
        if found is None:
            if _NEAR_MISS.match(line.strip()):
                raise MarkerError(f"{name}:{i + 1}: {line.strip()!r} looks like a marker but is "
                                  f"not one; markers are exactly: {', '.join(MARKER_LINES)}")
            continue
        kind, is_begin = found
        indent = line[:len(line) - len(line.lstrip())]
        if is_begin:
            if open_ is not None:
                raise MarkerError(f"{name}:{i + 1}: '### BEGIN {kind}' inside the "
                                  f"{open_[0]} region opened at line {open_[1] + 1}; regions "
                                  "cannot be nested")
            open_ = (kind, i, indent)
        else:
            if open_ is None:
                raise MarkerError(f"{name}:{i + 1}: '### END {kind}' without a BEGIN before it")
            if open_[0] != kind:
                raise MarkerError(f"{name}:{i + 1}: '### END {kind}' closes the {open_[0]} "
                                  f"region opened at line {open_[1] + 1}")
            if indent != open_[2]:
                raise MarkerError(f"{name}:{i + 1}: '### END {kind}' is not indented like its "
                                  f"BEGIN at line {open_[1] + 1}")
            regions.append(Region(kind, open_[1], i, indent))
            open_ = None
    if open_ is not None:
        raise MarkerError(f"{name}:{open_[1] + 1}: '### BEGIN {open_[0]}' has no "
                          f"'### END {open_[0]}'")
    return regions


def replace_regions(text: str, regions: Sequence[Region],
                    replace: Callable[[Region, list[str]], list[str]]) -> str:
    """`text` with each region's lines, markers included, replaced by `replace(region, body)`.
    Where a region is deleted (replaced by nothing), the blank lines that meet there shrink to
    the longer of the two runs, so deleting a function leaves the usual two blank lines."""
    lines = text.split("\n")
    out: list[str] = []
    start = 0
    for region in regions:
        out += lines[start:region.begin]
        new = replace(region, region.body(lines))
        start = region.end + 1
        if not new:
            before = len(out) - len(_strip_blank_tail(out))
            after = len(lines[start:]) - len(_strip_blank_tail(lines[start:][::-1]))
            del out[len(out) - before:]
            start += after
            at_end = start == len(lines)
            out += [""] * (min(after, 1) if at_end else max(before, after))
        out += new
    out += lines[start:]
    return "\n".join(out)


def _strip_blank_tail(lines: list[str]) -> list[str]:
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    return lines[:end]


def _is_code(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def functions(tree: ast.AST) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function of a module with its qualified name ('Linear.forward', 'f.g'), in order."""
    found: list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((prefix + child.name, child))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def enclosing_functions(tree: ast.AST, text: str, region: Region) -> list[str]:
    """Qualified names of the functions whose body holds `region`, innermost first."""
    lines = text.split("\n")
    code = [i + 1 for i in range(region.begin + 1, region.end) if _is_code(lines[i])]
    if not code:
        return []
    first, last = code[0], code[-1]
    holding = [(node.lineno, qualname) for qualname, node in functions(tree)
               if node.body[0].lineno <= first and last <= (node.end_lineno or 0)
               and region.begin + 1 > node.lineno]
    return [qualname for _, qualname in sorted(holding, reverse=True)]


def python_string(text: str) -> str:
    """A double-quoted Python literal of `text`."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def stub_lines(task: Task, qualname: str, indent: str) -> list[str]:
    """What a blanked region of `task` in function `qualname` becomes."""
    return [f"{indent}# TODO {task.id}: {task.todo_for(qualname)}",
            f"{indent}raise NotImplementedError({python_string(task.stub_message(qualname))})"]


def blank_python(text: str, name: str, claims: Mapping[str, Sequence[Task]],
                 blank: Collection[str]) -> tuple[str, list[tuple[Task, str]]]:
    """The student edition of the package file `name` ('scratchnet/linear.py', as in the
    registry's `where`): SOLUTION regions of the tasks in `blank` become stubs, FAST PATH regions
    are deleted, the marker lines of the other SOLUTION regions are dropped (their code stays).
    `claims` maps "file:qualname" to the tasks whose `where` lists it. Returns the new text and
    (task, "file:qualname") of every region seen (blanked or not). A SOLUTION region outside a
    function, or not claimed by exactly one task, is a MarkerError."""
    regions = find_regions(text, name)
    if not regions:
        return text, []
    hidden = [r for r in regions if r.kind == HIDDEN_TESTS]
    if hidden:
        raise MarkerError(f"{name}:{hidden[0].begin + 1}: hidden-test markers belong in notebook "
                          "test cells, not in package code")
    tree = ast.parse(text, filename=name) if any(r.kind == SOLUTION for r in regions) else None
    seen: list[tuple[Task, str]] = []
    owners: dict[Region, tuple[Task, str]] = {}
    for region in regions:
        if region.kind != SOLUTION:
            continue
        assert tree is not None
        enclosing = enclosing_functions(tree, text, region)
        if not enclosing:
            raise MarkerError(f"{name}:{region.begin + 1}: a SOLUTION region must hold code inside "
                              "a function")
        claimed = [(q, claims.get(f"{name}:{q}", ())) for q in enclosing]
        qualname, tasks = next(((q, t) for q, t in claimed if t), (enclosing[0], ()))
        where = f"{name}:{qualname}"
        if len(tasks) != 1:
            who = ", ".join(t.id for t in tasks) if tasks else "no task"
            raise MarkerError(f"{name}:{region.begin + 1}: the SOLUTION region in {qualname} is "
                              f"claimed by {who}; exactly one task's `where` must list {where!r}")
        owners[region] = (tasks[0], qualname)
        seen.append((tasks[0], where))

    def replace(region: Region, body: list[str]) -> list[str]:
        if region.kind == FAST_PATH:
            return []
        task, qualname = owners[region]
        return stub_lines(task, qualname, region.indent) if task.id in blank else body

    return replace_regions(text, regions, replace), seen


# ---- notebook cells (nbgrader's rules) -------------------------------------------------------

def _split_cell(source: str, begin: str, end: str, name: str
                ) -> list[tuple[bool, list[str], str]] | None:
    """nbgrader's scan of a cell: (inside, lines, indent of the BEGIN line) runs, or None when the
    cell holds no BEGIN delimiter. Raises MarkerError for nested or unterminated regions."""
    if begin not in source and end not in source:
        return None
    runs: list[tuple[bool, list[str], str]] = [(False, [], "")]
    inside = False
    for line in source.split("\n"):
        if begin in line:
            if inside:
                raise MarkerError(f"{name}: nested '{begin}' statements")
            inside = True
            runs.append((True, [], re.match(r"\s*", line).group(0)))
        elif end in line:
            if not inside:
                raise MarkerError(f"{name}: '{end}' without a '{begin}' before it")
            inside = False
            runs.append((False, [], ""))
        else:
            runs[-1][1].append(line)
    if inside:
        raise MarkerError(f"{name}: no '{end}' statement found")
    return runs


def clear_solution(source: str, code: bool, name: str = "<cell>") -> tuple[str, bool]:
    """nbgrader's ClearSolutions on one solution cell: each BEGIN/END SOLUTION region becomes the
    stub (indented like the BEGIN line); a cell without regions becomes the stub as a whole.
    Returns (source, whether a region was found)."""
    stub = (CODE_STUB if code else TEXT_STUB).split("\n")
    runs = _split_cell(source, NB_BEGIN_SOLUTION, NB_END_SOLUTION, name)
    if runs is None:
        return "\n".join(stub), False
    out: list[str] = []
    for inside, lines, indent in runs:
        out += [indent + s for s in stub] if inside else lines
    return "\n".join(out), True


def strip_solution_markers(source: str, name: str = "<cell>") -> str:
    """A solution cell that stays solved: the BEGIN/END SOLUTION lines dropped, the rest kept."""
    runs = _split_cell(source, NB_BEGIN_SOLUTION, NB_END_SOLUTION, name)
    return source if runs is None else "\n".join(line for _, lines, _ in runs for line in lines)


def clear_hidden_tests(source: str, name: str = "<cell>") -> tuple[str, bool]:
    """nbgrader's ClearHiddenTests on one cell: BEGIN/END HIDDEN TESTS regions removed with their
    delimiters. Returns (source, whether a region was removed)."""
    runs = _split_cell(source, NB_BEGIN_HIDDEN, NB_END_HIDDEN, name)
    if runs is None:
        return source, False
    return "\n".join(line for inside, lines, _ in runs if not inside for line in lines), \
        any(inside for inside, _, _ in runs)


def has_solution_region(source: str) -> bool:
    return NB_BEGIN_SOLUTION in source or NB_END_SOLUTION in source
