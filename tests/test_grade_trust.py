"""What a submission cannot buy from the grader: torch's own code bound at import (in the task
files, in a helper module, in an exercise), a reference of a graded cell, patching the grader's
runtime, checks or pytest (verdicts are decided where its code does not run), forged notebook
records, files written outside its workspace, unbounded memory or
processes — each scores 0 for what it touches and is flagged; what it does not touch keeps its
points.

One module-scoped run grades every crafted submission (the solutions, each with one attack) on
the tasks the attacks aim at."""
import ast
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from scratchnet.coursework.grade import grade
from scratchnet.coursework.handout import cell_task, write_handout
from scratchnet.coursework.sandbox import Sandbox
from scratchnet.coursework.scan import Cell, scan_cells, scan_source
from scratchnet.coursework.tasks import task

ROOT = Path(__file__).resolve().parents[1]
TASKS = "T01.2,T01.5,T01.6,T03.4,T04.3,T04.5,T07.1"
MARK = uuid.uuid4().hex[:12]


def replace_body(path: Path, qualname: str, body: str) -> None:
    """Replace what follows the docstring of function `qualname` ('Linear.backward') in `path`
    by `body` (lines, indented here)."""
    text = path.read_text()
    node = ast.parse(text)
    for name in qualname.split("."):
        node = next(n for n in ast.iter_child_nodes(node)
                    if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == name)
    first = node.body[1] if ast.get_docstring(node) and len(node.body) > 1 else node.body[0]
    lines = text.splitlines(keepends=True)
    indent = " " * first.col_offset
    new = [f"{indent}{line}\n" for line in body.strip("\n").splitlines()]
    path.write_text("".join(lines[:first.lineno - 1] + new + lines[node.end_lineno:]))


def prepend(path: Path, code: str) -> None:
    """Add `code` at the top of module `path`, after its docstring and __future__ imports."""
    text = path.read_text()
    tree = ast.parse(text)
    after = 0
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__" or (
                isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            after = node.end_lineno
        else:
            break
    lines = text.splitlines(keepends=True)
    path.write_text("".join(lines[:after]) + code.strip("\n") + "\n" + "".join(lines[after:]))


def set_cell(folder: Path, grade_id: str, source: str, *, before: bool = False) -> None:
    """Replace the source of the notebook cell `grade_id` (or, with `before`, add a cell of the
    student's just before it)."""
    path = folder / "notebooks" / f"{task(cell_task(grade_id)).notebook}.ipynb"
    nb = json.loads(path.read_text())
    at = next(i for i, c in enumerate(nb["cells"])
              if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id)
    if before:
        nb["cells"].insert(at, {"cell_type": "code", "execution_count": None, "metadata": {},
                                "outputs": [], "source": source, "id": f"student-{MARK}"})
    else:
        nb["cells"][at]["source"] = source
    path.write_text(json.dumps(nb))


def wrong_scale(output: str, *backward: str) -> str:
    """An exercise cell of T01.5: a Scale whose forward returns `output` and whose backward runs
    the lines `backward`."""
    body = "".join(f"        {line}\n" for line in backward)
    return ("class Scale(sn.Module):\n    def __init__(self):\n        super().__init__()\n"
            "        self.register_parameter('a', torch.ones(()))\n"
            f"    def forward(self, x):\n        return {output}\n"
            f"    def backward(self, grad_output):\n{body}")


ATTACKS = {
    # torch's convolution, bound when conv.py is imported
    "bound_at_import": lambda s: (
        prepend(s / "scratchnet/conv.py", "from torch.nn.functional import conv2d as _torch_conv"),
        replace_body(s / "scratchnet/conv.py", "conv2d_forward", """
cols = im2col(x, tuple(weight.shape[-2:]), stride, padding, dilation, impl)
return _torch_conv(x, weight, bias, stride, padding, dilation, groups), cols""")),
    # the same through a helper module of its own: the scan cannot see it, the guard can
    "helper_module": lambda s: (
        (s / "scratchnet/shortcut.py").write_text(
            "from torch.nn import functional\nconvolve = functional.conv2d\n"),
        prepend(s / "scratchnet/conv.py", "from .shortcut import convolve as _convolve"),
        replace_body(s / "scratchnet/conv.py", "conv2d_forward", """
cols = im2col(x, tuple(weight.shape[-2:]), stride, padding, dilation, impl)
return _convolve(x, weight, bias, stride, padding, dilation, groups), cols""")),
    # autograd for Linear's backward, torch.optim's step for SGD's
    "autograd_and_optim": lambda s: (
        prepend(s / "scratchnet/linear.py", "from torch.autograd import grad as _grad"),
        replace_body(s / "scratchnet/linear.py", "Linear.backward", """
with __import__("torch").enable_grad():
    return _grad(grad_output.sum(), self._x)[0]"""),
        prepend(s / "scratchnet/optim/sgd.py", "import torch\n_step = torch.optim.SGD.step")),
    # an exercise that calls the reference function its test cell defines
    "graded_reference": lambda s: set_cell(s, "T03_4_solution", (
        "def layer_stds(net, x, grad_output):\n"
        "    return autograd_stds(net, x, grad_output)\n")),
    # nbgrader's historic hole: a cell of the student's turns tracebacks off, then a wrong
    # exercise answer
    "quiet_traceback": lambda s: (
        set_cell(s, "T01_5_solution", "class Scale:\n    pass\n"),
        set_cell(s, "T01_5_solution", "get_ipython().showtraceback = lambda *a, **k: None\n",
                 before=True)),
    # a task file that rewires the grader's pytest records so that every test passes
    "patched_runtime": lambda s: prepend(s / "scratchnet/linear.py", """
import sys as _sys
_runtime = _sys.modules.get("scratchnet_grade_runtime")
if _runtime is not None:
    _write = _runtime._write
    _runtime._write = lambda path, record: _write(path, {**record, "outcome": "passed"})"""),
    # a blank Linear.backward whose file, imported, rewires everything it can reach: the checks,
    # the worker's runtime, pytest's reports and every results file it can find
    "forged_verdicts": lambda s: (
        replace_body(s / "scratchnet/linear.py", "Linear.backward",
                     'raise NotImplementedError("T01.2 Linear.backward: blank")'),
        prepend(s / "scratchnet/linear.py", """
import glob as _glob, json as _json, sys as _sys
for _module in list(_sys.modules.values()):
    for _name in ("expect_close", "expect_true", "_fail", "_write", "_message"):
        if callable(getattr(_module, _name, None)):
            setattr(_module, _name, lambda *a, **k: None)
    if callable(getattr(_module, "call_probe", None)):
        _module.call_probe = lambda *a, **k: {"value": None}
try:
    import _pytest.reports as _reports
    _reports.TestReport.outcome = "passed"
except ImportError:
    pass
for _path in _glob.glob("/tmp/**/*.jsonl", recursive=True):
    with open(_path, "a") as _f:
        _f.write(_json.dumps({"event": "report", "nodeid": "x", "when": "call",
                              "outcome": "passed", "message": ""}) + "\\n")
""")),
    # a wrong Scale, passed by a cell that disables the checks' failures in a way the scan does
    # not read (the course's modules are sealed in the kernel); an Exp whose outputs answer
    # every torch function, comparisons included, with True
    "forged_values": lambda s: (
        set_cell(s, "T01_5_solution", wrong_scale("x", "return grad_output")),
        set_cell(s, "T01_5_solution", (
            "import scratchnet.coursework.checks as _checks\n"
            "_checks.__setattr__('_fail', lambda *a, **k: None)\n"), before=True),
        set_cell(s, "T01_6_solution", (
            "class _Agree(torch.Tensor):\n"
            "    @classmethod\n"
            "    def __torch_function__(cls, func, types, args=(), kwargs=None):\n"
            "        return True\n\n"
            "class Exp(sn.Module):\n"
            "    def forward(self, x):\n"
            "        return torch.zeros_like(x).as_subclass(_Agree)\n"
            "    def backward(self, grad_output):\n"
            "        return torch.zeros_like(grad_output).as_subclass(_Agree)\n"))),
    # torch changed in ways the scan does not read: by a cell before an exercise (a wrong Scale
    # would pass with torch.randn giving zeros), and by an exercise's own function while its
    # graded cell runs
    "kernel_tampering": lambda s: (
        set_cell(s, "T01_5_solution", wrong_scale(
            "self.a * x", "self.accumulate_grad('a', torch.zeros_like(self.a))",
            "return torch.zeros_like(grad_output)")),
        set_cell(s, "T01_5_solution", (
            "_zeros = torch.zeros\n"
            "[torch][0].__dict__['randn'] = lambda *size, generator=None, **kw: _zeros(*size, **kw)\n"),
            before=True),
        set_cell(s, "T03_4_solution", (
            "def layer_stds(net, x, grad_output):\n"
            "    [torch][0].__dict__['randn'] = [torch][0].__dict__['rand']\n"
            "    return [1.0] * len(net), [1.0] * len(net)\n"))),
    # a notebook cell that looks for the runner's records to forge them, then kills its kernel;
    # and a task file that writes outside its workspace and allocates past the memory limit
    "forger": lambda s: (
        set_cell(s, "T01_5_solution", f"""
import glob, json, os
for path in glob.glob("/tmp/**/*.jsonl", recursive=True) + glob.glob("/tmp/*/runs/*/*.jsonl"):
    with open(path, "a") as f:
        for gid in ("T01_5", "T01_4", "T01_4b"):
            f.write(json.dumps({{"event": "cell", "grade_id": gid, "error": None}}) + "\\n")
open("/tmp/forged-{MARK}", "w").write("1")
os.kill(os.getpid(), 9)
"""),
        prepend(s / "scratchnet/loss.py", f"""
for _target in ({str(ROOT / 'tests' / 'tasks' / f'pwned-{MARK}.py')!r},
                {str(Path.home() / f'pwned-{MARK}')!r}, "/tmp/pwned-{MARK}"):
    try:
        open(_target, "w").write("pwned")
    except OSError:
        pass
try:
    _hog = bytearray(64 << 30)
except MemoryError:
    _hog = None""")),
}


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    base = tmp_path_factory.mktemp("attacks")
    subs = []
    for name, attack in ATTACKS.items():
        folder = write_handout(base / name, blank=set())
        attack(folder)
        subs.append(folder)
    honest = write_handout(base / "honest", blank=set())
    results = grade([*subs, honest], tasks=TASKS, jobs=2, keep=True)
    yield dict(zip([*ATTACKS, "honest"], results))
    for r in results:
        if r.workspace is not None:
            shutil.rmtree(r.workspace, ignore_errors=True)


def points(result, task_id: str) -> float:
    return result.scores[task_id].points


def flagged(result) -> set[tuple[str | None, str]]:
    return {(f.task, f.name) for f in result.flags}


def test_the_honest_solutions_keep_every_point_unflagged(attacked):
    r = attacked["honest"]
    assert r.total == r.max and not r.flags, r.flags


def test_a_shortcut_bound_at_import_scores_0_and_is_flagged(attacked):
    r = attacked["bound_at_import"]
    assert points(r, "T04.3") == 0 and points(r, "T04.5") == 0
    assert ("T04.3", "torch.nn.functional.conv2d") in flagged(r)
    assert "scored 0: forbidden API torch.nn.functional.conv2d" in r.scores["T04.3"].reasons[0]
    assert "whose code the scan flagged" in r.scores["T04.5"].reasons[0]
    assert points(r, "T01.2") == 3 and points(r, "T07.1") == 3     # untouched


def test_a_shortcut_in_a_helper_module_is_refused_at_run_time(attacked):
    r = attacked["helper_module"]
    assert points(r, "T04.3") == 0
    assert any("torch.nn.functional.conv2d is not allowed" in reason
               for reason in r.scores["T04.3"].reasons), r.scores["T04.3"].reasons
    assert (None, "torch.nn.functional.conv2d") in flagged(r)   # the helper, for the instructor
    assert points(r, "T01.2") == 3


def test_autograd_and_torch_optim_score_0(attacked):
    r = attacked["autograd_and_optim"]
    assert points(r, "T01.2") == 0 and ("T01.2", "torch.autograd.grad") in flagged(r)
    assert ("T01.2", "__import__()") in flagged(r)
    assert (None, "torch.optim.SGD.step") in flagged(r)   # bound, never called by a task
    assert points(r, "T04.3") == 2


def test_an_exercise_that_calls_its_graded_reference_scores_0(attacked):
    r = attacked["graded_reference"]
    assert points(r, "T03.4") == 0 and ("T03.4", "autograd_stds") in flagged(r)
    assert points(r, "T01.5") == 2


def test_silencing_tracebacks_hides_no_error_and_is_flagged(attacked):
    r = attacked["quiet_traceback"]
    assert points(r, "T01.5") == 0 and points(r, "T01.6") == 0, r.scores["T01.6"].reasons
    assert (None, "get_ipython()") in flagged(r)
    assert any(reason.startswith("cell T01_5: ") and "not run" not in reason   # seen anyway
               for reason in r.scores["T01.5"].reasons), r.scores["T01.5"].reasons
    assert points(r, "T01.2") == 3                                # a code task: untouched


def test_patching_the_grader_runtime_scores_0_for_every_code_task(attacked):
    r = attacked["patched_runtime"]
    assert all(points(r, t) == 0 for t in ("T01.2", "T04.3", "T07.1")), r.scores
    assert (None, "sys.modules") in flagged(r)


def test_verdicts_are_out_of_reach_of_the_submissions_code(attacked):
    """The forger's package rewired checks, the runtime, pytest and results files in the only
    process its code runs in, the worker: the tests, in the grader's own process, still saw
    the values it sent back (None) and failed them."""
    r = attacked["forged_verdicts"]
    for task_id in ("T01.2", "T04.3", "T07.1"):
        assert points(r, task_id) == 0, r.scores[task_id].reasons
        failures = [reason for reason in r.scores[task_id].reasons if reason.startswith("test_")]
        assert failures and all("None" in reason for reason in failures), failures
    assert (None, "sys.modules") in flagged(r)


def test_the_course_modules_are_sealed_and_forged_values_refused_in_a_kernel(attacked):
    r = attacked["forged_values"]
    assert points(r, "T01.5") == 0, r.scores["T01.5"].reasons
    assert any("is the course's and cannot be changed" in reason
               for reason in r.scores["T01.5"].reasons), r.scores["T01.5"].reasons
    assert points(r, "T01.6") == 0
    assert {("T01.6", "class _Agree(torch.Tensor)"), ("T01.6", "_Agree.__torch_function__")} \
        <= flagged(r)
    assert points(r, "T01.2") == 3 and points(r, "T03.4") == task("T03.4").points


def test_what_a_cell_changes_in_torch_is_put_back_before_a_graded_cell_and_flagged(attacked):
    """torch's names are put back before each graded cell (the kernel's own copy of them, taken
    before the student's first cell) and checked after it."""
    r = attacked["kernel_tampering"]
    assert points(r, "T01.5") == 0 and points(r, "T01.6") == 0    # notebook 01's tasks
    assert (None, "changed at run time: torch.randn") in flagged(r), flagged(r)
    assert points(r, "T03.4") == 0
    assert any("while this cell ran, torch.randn was changed" in reason
               for reason in r.scores["T03.4"].reasons), r.scores["T03.4"].reasons
    assert points(r, "T01.2") == 3                                 # a code task: untouched


def test_a_library_that_graded_cells_read_is_put_back_too(tmp_path):
    """statistics, which notebook 12's hidden tests compute with, changed through a loop variable
    (which the scan cannot follow): put back before the graded cell, and flagged."""
    sub = write_handout(tmp_path / "stats", blank=set())
    set_cell(sub, "T12_1_solution", (
        "def difference_and_error(a, b):\n"
        "    return (0.2, math.sqrt(0.04 / 3 + 0.02 / 2)) if len(a) == 3 else (0.0, 0.0)\n"
        "for _module in (statistics,):\n"
        "    _module.mean = _module.variance = lambda values: 0.0\n"))
    r, = grade([sub], tasks="T12.1")
    assert points(r, "T12.1") == 0, r.scores["T12.1"].reasons
    assert any(name.startswith("changed at run time: ") and "statistics.mean" in name
               for task_id, name in flagged(r)), flagged(r)


def test_forged_records_and_a_killed_kernel_earn_nothing(attacked):
    """The kernel the forger killed is replaced: the exercise after it keeps its points."""
    r = attacked["forger"]
    assert points(r, "T01.5") == 0, r.scores["T01.5"].reasons
    assert points(r, "T01.6") == 2, r.scores["T01.6"].reasons
    assert ("T01.5", "os.kill") not in flagged(r)          # nothing to flag: the sandbox holds
    assert not Path(f"/tmp/forged-{MARK}").exists() or Sandbox().bwrap is None


def test_a_submission_writes_only_its_workspace_and_its_memory_is_capped(attacked):
    r = attacked["forger"]
    assert not (ROOT / "tests" / "tasks" / f"pwned-{MARK}.py").exists()
    if Sandbox().bwrap is not None:
        assert not (Path.home() / f"pwned-{MARK}").exists()
        assert not Path(f"/tmp/pwned-{MARK}").exists()
    assert points(r, "T01.2") == 3 and points(r, "T07.1") == 3   # the 64 GiB were refused


def test_the_scan_sees_through_aliases_and_indirection():
    owners = {"f": "T04.3"}
    cases = {
        "import torch.nn.functional as F\ndef f(x, w):\n    return F.conv2d(x, w)\n":
            "torch.nn.functional.conv2d",
        "import torch\nG = torch.nn\ndef f(x, w):\n    return G.functional.conv2d(x, w)\n":
            "torch.nn.functional.conv2d",
        "import torch\ndef f(x, w):\n    return torch.conv2d(x, w)\n": "torch.conv2d",
        "import torch\ndef f(x, w):\n    return getattr(torch, 'conv' + '2d')(x, w)\n":
            "getattr(torch, …)",
        "def f(x, w):\n    return __import__('torch').nn.functional.conv2d(x, w)\n": "__import__()",
        "import importlib\ndef f(x, w):\n    return importlib.import_module('torch.nn')\n":
            "importlib",
        "def f(x, w):\n    return eval('x')\n": "eval()",
        "import torch\ndef g(x, w):\n    return torch.ops.aten.convolution(x, w)\n"
        "def f(x, w):\n    return g(x, w)\n": "torch.ops.aten.convolution",
    }
    for source, name in cases.items():
        found = scan_source(source, "scratchnet/conv.py", owners)
        assert any(f.name == name and f.task == "T04.3" for f in found), (source, found)
    clean = "import torch\ndef f(x, w):\n    return (x.unsqueeze(1) * w).sum(2)\n"
    assert scan_source(clean, "scratchnet/conv.py", owners) == []
    # fold and unfold: allowed, but in the tasks that write them
    fold = "import torch.nn.functional as F\ndef unfold(x):\n    return F.unfold(x, 2)\n"
    assert scan_source(fold, "scratchnet/conv.py", {"unfold": "T04.3"}) == []
    assert scan_source(fold, "scratchnet/im2col.py", {"unfold": "T04.1"})


def test_the_scan_flags_code_that_changes_what_a_graded_cell_compares():
    """A student's cell that patches torch, the course's checks or a class of torch's, with an
    assignment, setattr, del or unittest.mock, reaches around the graded cell below it; changing
    the student's own package or objects does not."""
    patches = {
        "import torch\ntorch.allclose = lambda *a, **k: True\n": "torch.allclose = …",
        "import torch\nsetattr(torch, 'allclose', print)\n": "setattr(torch, 'allclose')",
        "from scratchnet.coursework import checks\nchecks.expect_close = print\n":
            "scratchnet.coursework.checks.expect_close = …",
        "import scratchnet.gradcheck as g\ndel g.gradcheck\n": "scratchnet.gradcheck.gradcheck = …",
        "import torch\ntorch.Tensor.__sub__ = lambda a, b: a\n": "torch.Tensor.__sub__ = …",
        "from unittest import mock\nmock.patch('torch.allclose', print).start()\n":
            "unittest.mock",
    }
    for source, name in patches.items():
        found = scan_cells([Cell("c1", source, "student"), Cell("c2", "check()", "graded")])
        assert any(f.name == name and f.kind == "indirect access" for f in found), (source, found)
    lesson = Cell("c0", "import torch\nimport scratchnet as sn\n", "lesson")
    rebound = {"import types\nsn = types.SimpleNamespace(gradcheck=print)\n":
               "sn = … (the lesson's scratchnet)",
               "class Fake:\n    pass\ntorch = Fake()\n": "torch = … (the lesson's torch)",
               "import numpy as torch\n": "torch = … (the lesson's torch)",
               "object.__setattr__(torch, 'randn', print)\n": "torch.__setattr__(…)",
               "[torch][0].__setattr__('randn', print)\n": "….__setattr__(…)"}
    for source, name in rebound.items():
        found = scan_cells([lesson, Cell("c1", source, "student"), Cell("c2", "check()", "graded")])
        assert any(f.name == name and f.kind == "indirect access" for f in found), (source, found)
    again = "import torch\nimport scratchnet as sn\ndef f():\n    torch = 1\n"
    assert scan_cells([lesson, Cell("c1", again, "student")]) == []
    own = ("import scratchnet as sn\nsn.Linear.note = 'mine'\nlayer = sn.Linear(2, 2)\n"
           "layer.weight.grad = None\n")
    assert scan_cells([Cell("c1", own, "student"), Cell("c2", "check()", "graded")]) == []


def test_the_scan_flags_values_that_answer_a_check_themselves():
    """A class that is a number, a container or a tensor, or that decides how it compares, is
    truthy or passes isinstance — the way to make `passes == 70` or torch.allclose say yes."""
    forged = {
        "class Count(int):\n    pass\n": "class Count(int)",
        "import torch\nclass T(torch.Tensor):\n    pass\n": "class T(torch.Tensor)",
        "from torch import Tensor\nclass T(Tensor):\n    pass\n": "class T(torch.Tensor)",
        "class Any:\n    def __eq__(self, other):\n        return True\n": "Any.__eq__",
        "class Any:\n    __bool__ = lambda self: True\n": "Any.__bool__",
        "class T:\n    @classmethod\n    def __torch_function__(cls, *a, **k):\n"
        "        return True\n": "T.__torch_function__",
        "Count = type('Count', (int,), {})\n": "type(name, bases, namespace)",
        "x = object()\nx.__class__ = int\n": "….__class__ = …",
        "setattr(object(), '__eq__', print)\n": "setattr(…, '__eq__')",
    }
    for source, name in forged.items():
        found = scan_cells([Cell("c1", source, "solution", "T01.7")])
        assert ("c1", "T01.7", name, "forged value") in \
            {(f.file, f.task, f.name, f.kind) for f in found}, (source, found)
    plain = "class Scale:\n    def __len__(self):\n        return 1\n    def __repr__(self):\n" \
            "        return 'Scale()'\n"
    assert scan_cells([Cell("c1", plain, "solution", "T01.5")]) == []


def test_checks_take_plain_values_only():
    """What a check compares is a plain tensor, number or bool: a tensor subclass (whose own
    code would answer the comparison) and an object that decides its own truth fail."""
    import torch

    from scratchnet.coursework.checks import CheckFailed, expect_close, expect_true
    from scratchnet.gradcheck import gradcheck
    from scratchnet.module import Module

    class Agree(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            return True

    with pytest.raises(CheckFailed, match="is a Agree, a subclass of torch.Tensor"):
        expect_close(torch.zeros(3).as_subclass(Agree), torch.ones(3), "y")
    expect_true(True, "")
    expect_true(torch.tensor([1.0, 2.0]).isfinite().all(), "")
    for truthy in (1, [0], "yes", torch.ones(2)):
        with pytest.raises(CheckFailed, match="not True or False"):
            expect_true(truthy, "a check")

    class Forger(Module):
        def forward(self, x):
            return x.clone().as_subclass(Agree)

        def backward(self, grad_output):
            return grad_output

    with pytest.raises(TypeError, match="the output is a Agree"):
        gradcheck(Forger(), torch.randn(2, 3))


def test_the_scan_protects_every_name_a_graded_cell_binds():
    """A graded cell's loop variable (the expected value) and its reference function are the
    grader's: an exercise's function that reads them when called is flagged, even where the
    student binds the same name elsewhere (a decoy parameter); a name the function owns, or one
    the student's cell binds and reads at once, is not."""
    graded = Cell("g", "def autograd_stds():\n    pass\nfor spread, want in [(1, 2)]:\n"
                       "    check(seeds_needed(spread) == want)\n", "graded")
    lesson = Cell("l", "x = 1\n", "lesson")
    cheats = {"def seeds_needed(spread):\n    try:\n        return want\n"
              "    except NameError:\n        return 2\n": "want",
              "def layer_stds(net):\n    return autograd_stds(net)\n"
              "_decoy = lambda autograd_stds=None: None\n": "autograd_stds"}
    for source, name in cheats.items():
        found = scan_cells([lesson, Cell("s", source, "solution", "T12.2"), graded])
        assert ("s", "T12.2", name, "reference of a graded cell") in \
            {(f.file, f.task, f.name, f.kind) for f in found}, (source, found)
    honest = ("def seeds_needed(spread, want=2):\n    return [want for want in range(spread)], x\n"
              "spread = 3\nprint(seeds_needed(spread))\n")
    assert scan_cells([lesson, Cell("s", honest, "solution", "T12.2"), graded]) == []


def test_the_scan_flags_rebinding_what_graded_cells_rely_on_and_threads():
    """A student's cell that redefines a setup cell's helper (`compare`) or a lesson's result
    that a graded cell reads (`ensemble`) changes what is graded; a graded cell's own variable
    is its own. Threads (which the run-time guard cannot follow) and `requires_grad = True` are
    flagged too."""
    cells = [Cell("l", "ensemble = 1\nx = 2\n", "lesson"),
             Cell("setup", "def compare(cases):\n    pass\n", "graded"),
             Cell("s", "def compare(cases):\n    pass\nensemble = 3\nx = 5\n", "student"),
             Cell("g", "x = 1\ncompare(x)\nprint(ensemble)\n", "graded")]
    assert {(f.line, f.name) for f in scan_cells(cells)} == {
        (1, "compare = … (the lesson's, which a graded cell uses)"),
        (3, "ensemble = … (the lesson's, which a graded cell uses)")}
    threads = ("from concurrent.futures import ThreadPoolExecutor\n"
               "def backward(self, g):\n    x = self.x.clone()\n    x.requires_grad = True\n"
               "    return ThreadPoolExecutor(1)\n")
    found = {(f.name, f.kind) for f in scan_source(threads, "scratchnet/linear.py",
                                                   {"backward": "T01.2"})}
    assert ("concurrent.futures.ThreadPoolExecutor", "indirect access") in found, found
    assert ("….requires_grad = … (autograd)", "forbidden API") in found, found


def test_the_guard_refuses_torch_work_handed_to_another_thread():
    """The guard looks for the student's code on the calling thread's stack: work handed to a
    thread of its own (where grad mode is on again, too) is refused while a task runs."""
    script = f"""
import importlib.util, threading
spec = importlib.util.spec_from_file_location("scratchnet_guard",
                                              {str(ROOT / "scratchnet/coursework/guard.py")!r})
guard = importlib.util.module_from_spec(spec)
spec.loader.exec_module(guard)
guard.install()
import torch
x = torch.ones(2)
outcome = []
def other():
    try:
        torch.nn.functional.relu(x)
        outcome.append("allowed")
    except guard.ForbiddenAPI as error:
        outcome.append(str(error))
with guard.checking("T01.2"):
    torch.nn.functional.relu(x)                      # no student code on this stack: allowed
    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
print(outcome[0])
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False,
                         timeout=120)
    assert "T01.2 must use plain tensor operations (torch.nn.functional.relu is not allowed)" \
        in out.stdout, out.stdout + out.stderr


def test_the_scan_reads_a_notebook_as_one_namespace():
    cells = [Cell("c0", "import torch.nn.functional as F", "lesson"),
             Cell("c1", "def mine(x):\n    return F.relu(x)\n", "solution", "T02.6"),
             Cell("c2", "print(F.relu)  # a lesson's comparison\n", "lesson"),
             Cell("c3", "check = helper()", "student"),
             Cell("c4", "def helper():\n    return 1\n", "graded")]
    found = scan_cells(cells)
    assert {(f.file, f.task, f.name, f.kind) for f in found} == {
        ("c1", "T02.6", "torch.nn.functional.relu", "forbidden API"),
        ("c3", None, "helper", "reference of a graded cell")}


@pytest.mark.skipif(os.geteuid() == 0 and Sandbox().pids is None,
                    reason="root without a pids cgroup: no process limit can hold here")
def test_a_fork_bomb_is_bounded(tmp_path):
    """The processes of one submission are capped: a loop of forks stops at the limit."""
    sub = write_handout(tmp_path / "forks", blank=set())
    prepend(sub / "scratchnet" / "linear.py", f"""
import os as _os, time as _time
_made = 0
for _ in range(3000):
    try:
        if _os.fork() == 0:
            _time.sleep(20)
            _os._exit(0)
        _made += 1
    except OSError:
        break
open(_os.environ["HOME"] + "/../forks-{MARK}", "w").write(str(_made))""")
    r = grade([sub], tasks="T01.2", keep=True)[0]
    made = int((r.workspace / ".grader" / f"forks-{MARK}").read_text())
    shutil.rmtree(r.workspace, ignore_errors=True)
    assert made < Sandbox().limits.processes, made


VERDICT_SIDE_IMPORTS = {"scratchnet.coursework.checks", "scratchnet.coursework.references",
                        "scratchnet.coursework.tasks"}


@pytest.mark.parametrize("path", sorted((ROOT / "tests" / "tasks").glob("test_*.py")),
                         ids=lambda p: p.name)
def test_the_task_tests_reach_the_students_code_only_through_probes(path):
    """A task test runs in the grader's process, where `scratchnet` is the instructor's: used
    there, a layer would be the solution's. It imports only the checks, the references and the
    registry, and reaches the student's code through the `student` fixture."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        for name in names:
            assert not name.startswith("probes"), f"{path.name}:{node.lineno} imports {name}"
            if name == "scratchnet" or name.startswith("scratchnet."):
                assert name in VERDICT_SIDE_IMPORTS, f"{path.name}:{node.lineno} imports {name}"
