"""The static half of the grader's purity rule: an AST scan of the code a submission brings for
the APIs that would do a task for the student, however they are bound or reached.

    findings = scan_source(text, "scratchnet/conv.py", owners)    # → [Finding, …]

Forbidden (`FORBIDDEN`): torch.nn (torch.nn.functional's fold and unfold excepted, but in the
tasks that write them, `FOLD_TASKS`), torch.autograd, torch.func, torch.optim, torch._C,
torch.ops and their kin, functorch, and the names of the torch namespace that are the same object
as a forbidden function (`torch.conv2d` is `torch.nn.functional.conv2d`). A name counts wherever
it is reached: `import torch.nn.functional as F; F.conv2d`, `from torch.nn.functional import
conv2d`, `G = torch.nn; G.functional`, `from torch import nn`.

Indirect access (`INDIRECT`): what reaches a module or an object without naming it — importlib,
`__import__`, eval/exec/compile, `getattr(torch, name)` with a computed or forbidden name,
sys.modules, frames, closures and globals, gc, ctypes — what reaches into the grader or the
notebook kernel (pytest, the grader's runtime, IPython's shell, sys.excepthook, os._exit), and
what changes code that is not the student's: assigning or deleting an attribute of torch, of
another library or of the course's own checks (`torch.allclose = …`, `setattr(checks, "…", …)`,
unittest.mock), which would change what a graded cell compares; threads, where the run-time
guard cannot follow; and, in a notebook, a student's cell that binds again what the instructor's
cells import or define and a graded cell reads (`sn = …`, a setup cell's `compare`), or an
exercise's function that reads what only a graded cell binds (its reference, its expected value).

Forged values (`FORGED_VALUE`): a value that answers a check's question itself instead of being
compared — a class that derives from a number, a string, a container or a tensor, or that
defines how it compares, converts to bool, passes isinstance or takes over torch's functions
(`__eq__`, `__bool__`, `__instancecheck__`, `__torch_function__` …), a class made by
`type(name, bases, namespace)`, and a changed `__class__`. No task needs one.

A finding inside a task's function (or inside a function that one calls, in the same file)
belongs to that task; one elsewhere (an import never used by a task, a helper file) flags the
submission without taking a task's points.
"""
from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from .guard import FOLD_TASKS
from .regions import functions

FORBIDDEN = ("torch.nn", "torch.autograd", "torch.func", "torch.optim", "torch._C", "torch.ops",
             "torch.library", "torch._refs", "torch._prims", "torch._decomp", "torch._dynamo",
             "torch._functorch", "torch.vmap", "torch.enable_grad", "torch.set_grad_enabled",
             "functorch")
FOLD = ("torch.nn.functional.fold", "torch.nn.functional.unfold")
INDIRECT_MODULES = ("importlib", "builtins", "gc", "ctypes", "inspect", "pytest", "_pytest",
                    "pluggy", "IPython.core", "IPython.terminal", "ipykernel", "traitlets", "scratchnet_grade_runtime",
                    "scratchnet_guard", "nbclient", "jupyter_client", "zmq", "subprocess",
                    "multiprocessing", "signal", "pickle", "marshal", "unittest.mock", "mock",
                    "threading", "_thread", "concurrent")
# the package's modules that are the course's, not the student's: patching them is reaching around
NOT_STUDENTS = ("scratchnet.coursework", "scratchnet.gradcheck", "scratchnet.interop")
INDIRECT_CALLS = ("__import__", "eval", "exec", "compile", "globals", "get_ipython", "breakpoint")
INDIRECT_ATTRIBUTES = ("__globals__", "__closure__", "__code__", "__builtins__", "__subclasses__",
                       "f_back", "f_globals", "f_locals", "f_builtins", "tb_frame", "gi_frame",
                       "cr_frame", "func_globals")
# … and of a module (`sys.modules`, `torch.__dict__`), not of an object (`self.__dict__`)
MODULE_ATTRIBUTES = ("__dict__", "modules", "excepthook", "_exit", "_getframe", "setprofile",
                     "settrace", "meta_path", "path_hooks")
# what a forged value is made of: the types it may not derive from, the methods it may not define
VALUE_TYPES = ("int", "float", "complex", "bool", "str", "bytes", "tuple", "list", "dict", "set",
               "frozenset", "torch.Tensor", "torch.nn.Parameter", "torch.nn.parameter.Parameter",
               "numpy.ndarray", "numbers.Number", "numbers.Real")
FORGING_METHODS = ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__bool__",
                   "__instancecheck__", "__subclasscheck__", "__torch_function__",
                   "__torch_dispatch__")
FORGED_VALUE = "forged value"
# attribute names that `getattr(x, "name")` may not spell out
FORBIDDEN_ATTRIBUTES = ("nn", "autograd", "func", "optim", "_C", "ops", "functional", "library",
                        "vmap", "enable_grad", "set_grad_enabled", *INDIRECT_ATTRIBUTES,
                        *MODULE_ATTRIBUTES)


@dataclass(frozen=True)
class Finding:
    """One use: where (file and line, a notebook cell as 'notebooks/x.ipynb, cell 7'), what
    (a dotted name such as 'torch.nn.functional.conv2d'), the kind ('forbidden API' or
    'indirect access') and the task it belongs to (None: the submission's)."""
    file: str
    line: int
    name: str
    kind: str
    task: str | None = None

    def __str__(self) -> str:
        owner = f" [{self.task}]" if self.task else ""
        return f"{self.file}:{self.line}: {self.kind} {self.name}{owner}"


def torch_aliases() -> frozenset[str]:
    """The names of the torch namespace that are the same object as a forbidden function:
    torch.conv2d is torch.nn.functional.conv2d (computed once, by identity)."""
    import torch
    import torch.nn.functional as F

    def unwrapped(value: object) -> object:          # the guard's wrapper is the function
        return getattr(value, "__wrapped__", value)

    banned = {id(unwrapped(getattr(F, n))) for n in dir(F)
              if not n.startswith("__") and n not in ("fold", "unfold")
              and callable(getattr(F, n)) and not isinstance(getattr(F, n), type)}
    return frozenset(f"torch.{n}" for n in dir(torch) if not n.startswith("__")
                     and id(unwrapped(getattr(torch, n, None))) in banned)


def _under(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


class _Scanner(ast.NodeVisitor):
    def __init__(self, file: str, aliases: frozenset[str], allow_fold: bool,
                 cells: bool = False) -> None:
        self.file, self.aliases, self.allow_fold = file, aliases, allow_fold
        self.cells = cells                        # a notebook's cells, not a package file
        self.bound: dict[str, str] = {}           # a local name → the dotted path it stands for
        self.found: list[tuple[int, str, str]] = []

    # -- what a name or attribute chain stands for --------------------------------------------
    def dotted(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return self.bound.get(node.id, node.id if node.id in ("torch", "functorch", "sys", "os")
                                  else None)
        if isinstance(node, ast.Attribute):
            base = self.dotted(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def forbidden(self, name: str) -> bool:
        if not self.allow_fold and _under(name, FOLD):
            return True
        if _under(name, FOLD) or name in ("torch.nn.functional",):
            return False
        return _under(name, FORBIDDEN) or name in self.aliases

    def report(self, node: ast.AST, name: str, kind: str) -> None:
        self.found.append((getattr(node, "lineno", 0), name, kind))

    # -- bindings ----------------------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.imported(node, alias.name)
            if alias.asname:
                self.bound[alias.asname] = alias.name
            else:
                top = alias.name.split(".")[0]
                self.bound[top] = top

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level:                                    # a relative import of the package
            return
        for alias in node.names:
            full = f"{module}.{alias.name}"
            self.imported(node, module if alias.name == "*" else full)
            self.bound[alias.asname or alias.name] = full

    def imported(self, node: ast.AST, name: str) -> None:
        if self.forbidden(name):
            self.report(node, name, "forbidden API")
        elif _under(name, INDIRECT_MODULES) or name in ("sys.modules", "os._exit"):
            self.report(node, name, "indirect access")

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for base in node.bases:
            name = self.dotted(base) or (base.id if isinstance(base, ast.Name) else None)
            if name in VALUE_TYPES or name == "Tensor":
                self.report(node, f"class {node.name}({name})", FORGED_VALUE)
        for item in node.body:
            targets = ([item.name] if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                       else [t.id for t in getattr(item, "targets", []) if isinstance(t, ast.Name)])
            for name in targets:
                if name in FORGING_METHODS:
                    self.report(item, f"{node.name}.{name}", FORGED_VALUE)
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.generic_visit(node)
        for t in node.targets:
            self.patched(t)
        target = self.dotted(node.value)
        if target is not None:
            for t in node.targets:
                if isinstance(t, ast.Name):
                    self.bound[t.id] = target

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.generic_visit(node)
        self.patched(node.target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.generic_visit(node)
        self.patched(node.target)

    def visit_Delete(self, node: ast.Delete) -> None:
        self.generic_visit(node)
        for t in node.targets:
            self.patched(t)

    def patched(self, target: ast.AST) -> None:
        """An attribute of a module that is not the student's (or of what it holds: a class, a
        function), assigned or deleted: monkeypatching; an object's class changed."""
        if isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                self.patched(t)
        elif isinstance(target, ast.Attribute) and target.attr in ("__class__", *FORGING_METHODS):
            self.report(target, f"….{target.attr} = …", FORGED_VALUE)
        elif isinstance(target, ast.Attribute) and target.attr == "requires_grad":
            self.report(target, "….requires_grad = … (autograd)", "forbidden API")
        elif isinstance(target, ast.Attribute):
            base = self.dotted(target.value)
            if base is not None and _foreign(base):
                self.report(target, f"{base}.{target.attr} = …", "indirect access")

    # -- uses --------------------------------------------------------------------------------
    def visit_Attribute(self, node: ast.Attribute) -> None:
        name = self.dotted(node)
        if name is not None and self.forbidden(name):
            self.report(node, name, "forbidden API")
            return
        base = self.dotted(node.value)
        if node.attr in INDIRECT_ATTRIBUTES or (node.attr in MODULE_ATTRIBUTES and base):
            self.report(node, f"{base or '…'}.{node.attr}", "indirect access")
            return
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        name = self.bound.get(node.id)
        if name is not None and isinstance(node.ctx, ast.Load):
            if self.forbidden(name):
                self.report(node, name, "forbidden API")
            elif _under(name, INDIRECT_MODULES):
                self.report(node, name, "indirect access")
        elif node.id in ("__builtins__",):
            self.report(node, node.id, "indirect access")

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in INDIRECT_CALLS and func.id not in self.bound:
            self.report(node, f"{func.id}()", "indirect access")
        if isinstance(func, ast.Name) and func.id == "vars" and node.args \
                and self.dotted(node.args[0]) is not None:
            self.report(node, f"vars({self.dotted(node.args[0])})", "indirect access")
        if isinstance(func, ast.Name) and func.id in ("getattr", "setattr", "delattr") \
                and func.id not in self.bound and node.args:
            self.attribute_by_string(node, func.id)
        if isinstance(func, ast.Name) and func.id == "type" and func.id not in self.bound \
                and len(node.args) == 3:
            self.report(node, "type(name, bases, namespace)", FORGED_VALUE)
        if isinstance(func, ast.Attribute) and func.attr in ("__setattr__", "__delattr__"):
            self.dunder_setattr(node, func)
        self.generic_visit(node)

    def dunder_setattr(self, node: ast.Call, func: ast.Attribute) -> None:
        """`object.__setattr__(torch, …)` or `torch.__setattr__(…)`: an attribute set past the
        module's own rules; only an object's own (`self`, `super()`) are its business."""
        receiver = func.value
        if isinstance(receiver, ast.Name) and receiver.id in ("object", "type") and node.args:
            receiver = node.args[0]
        if isinstance(receiver, ast.Name) and receiver.id in ("self", "cls") or (
                isinstance(receiver, ast.Call) and isinstance(receiver.func, ast.Name)
                and receiver.func.id == "super"):
            return
        target = self.dotted(receiver)
        # a package's own objects by a plain name (`for module in self.modules()`) are its own;
        # a notebook cell has no business with any
        if not self.cells and isinstance(receiver, ast.Name) and (target is None
                                                                   or not _foreign(target)):
            return
        self.report(node, f"{target or '…'}.{func.attr}(…)", "indirect access")

    def attribute_by_string(self, node: ast.Call, how: str) -> None:
        target = self.dotted(node.args[0])
        key = node.args[1] if len(node.args) > 1 else None
        constant = key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) \
            else None
        if constant is None:
            if target is not None and (target == "torch" or target.startswith("torch.")):
                self.report(node, f"{how}({target}, …)", "indirect access")
            return
        if how == "setattr" and constant in ("__class__", *FORGING_METHODS):
            self.report(node, f"setattr(…, {constant!r})", FORGED_VALUE)
            return
        if constant in FORBIDDEN_ATTRIBUTES or constant in INDIRECT_ATTRIBUTES \
                or (target is not None and self.forbidden(f"{target}.{constant}")) \
                or (how != "getattr" and target is not None and _foreign(target)):
            self.report(node, f"{how}({target or '…'}, {constant!r})", "indirect access")


def _foreign(name: str) -> bool:
    """Whether dotted `name` is code that is not the student's: another library, or the course's
    own modules of the package."""
    return not _under(name, ("scratchnet",)) or _under(name, NOT_STUDENTS)


def _function_spans(tree: ast.Module) -> dict[str, tuple[int, int, set[str]]]:
    """qualname → (first line, last line, the names it refers to) for every function."""
    spans: dict[str, tuple[int, int, set[str]]] = {}
    for name, node in functions(tree):
        refs = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        refs |= {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
        spans[name] = (node.lineno, node.end_lineno or node.lineno, refs)
    return spans


def _owners(tree: ast.Module, tasks: Mapping[str, str]) -> dict[int, set[str]]:
    """line → the tasks that run it: a task's function (qualname in `tasks`) runs its own lines
    and, transitively, those of the functions of this file it refers to by name."""
    spans = _function_spans(tree)
    short = {}
    for qualname in spans:
        short.setdefault(qualname.rsplit(".", 1)[-1], set()).add(qualname)
    lines: dict[int, set[str]] = {}
    for qualname, task_id in tasks.items():
        if qualname not in spans:
            continue
        reached, todo = {qualname}, [qualname]
        while todo:
            for ref in spans[todo.pop()][2]:
                for other in short.get(ref, ()):
                    if other not in reached:
                        reached.add(other)
                        todo.append(other)
        for name in reached:
            first, last, _ = spans[name]
            for line in range(first, last + 1):
                lines.setdefault(line, set()).add(task_id)
    return lines


def scan_source(text: str, file: str, tasks: Mapping[str, str] | None = None, *,
                task: str | None = None, aliases: frozenset[str] | None = None) -> list[Finding]:
    """The findings in Python source `text` (named `file` in them). `tasks`: qualname → task id
    of the task functions it holds (a package file); `task`: the task all of it belongs to (a
    notebook solution cell). Source that does not parse gives no finding (it fails its tests)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    aliases = torch_aliases() if aliases is None else aliases
    tasks = dict(tasks or {})
    fold_ok = not (set(tasks.values()) | {task}) & FOLD_TASKS
    scanner = _Scanner(file, aliases, allow_fold=fold_ok)
    scanner.visit(tree)
    owners = _owners(tree, tasks) if tasks else {}
    findings = []
    for line, name, kind in scanner.found:
        charged = sorted(owners.get(line, ())) or [task]
        findings.extend(Finding(file, line, name, kind, t) for t in charged)
    return sorted(set(findings), key=lambda f: (f.file, f.line, f.name, f.task or ""))


def cell_python(source: str) -> str:
    """A notebook cell's source as Python: IPython's magics and shell lines blanked, so that line
    numbers stay the cell's."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())


@dataclass(frozen=True)
class Cell:
    """A notebook code cell as the scan sees it: `label` names it in findings; `kind` is
    "graded" (the grader's own cell: it defines names, nothing in it is reported), "lesson" (the
    instructor's cell, unchanged: it binds names, nothing in it is reported), "student" (a cell
    the student wrote or changed: indirect access is reported) or "solution" (an exercise's
    cell: everything is reported, and belongs to `task`, but on the lines in `scaffold`, the
    instructor's own lines around the solution region)."""
    label: str
    source: str
    kind: str
    task: str | None = None
    scaffold: frozenset[str] = frozenset()


def scan_cells(cells: list[Cell], *, aliases: frozenset[str] | None = None) -> list[Finding]:
    """The findings in a notebook's code cells, given in order: one namespace, as in the kernel,
    so a cell may import what a later cell uses. A student's cell that reads a name which only a
    graded cell further down defines reaches the grader's reference (say, an exercise whose
    function calls the test cell's reference function): an indirect access."""
    aliases = torch_aliases() if aliases is None else aliases
    parsed = []
    for cell in cells:
        try:
            parsed.append((cell, ast.parse(cell_python(cell.source))))
        except (SyntaxError, ValueError):
            continue
    # what the lesson binds in the namespace is the lesson's to share; what only a graded cell
    # binds (its reference function, its loop's expected value) is the grader's
    lesson = {name for c, t in parsed if c.kind == "lesson" for _, name in _global_bindings(t)}
    # what the graded cells from each position on define, for the cells before them
    defined_below: list[set[str]] = [set()]
    for cell, tree in reversed(parsed):
        own = {name for _, name in _global_bindings(tree)} if cell.kind == "graded" else set()
        defined_below.insert(0, defined_below[0] | own)
    # what the instructor's cells import (`sn`, `torch`, `F`): the names its graded cells rely on
    imports = {name: path for c, t in parsed if c.kind in ("lesson", "graded")
               for name, path in import_paths(t).items()}
    # what they bind otherwise and a graded cell reads without binding it: a setup cell's helper
    # (`compare`), a lesson's result (`ensemble`)
    instructors = {name for c, t in parsed if c.kind in ("lesson", "graded")
                   for _, name in _global_bindings(t)}
    relied_on = instructors & {node.id for c, t in parsed if c.kind == "graded"
                               for node, _ in _global_loads(t)
                               if _reads_before_binding(t, node.id)}
    scanner = _Scanner("", aliases, allow_fold=True, cells=True)
    findings: list[Finding] = []
    bound: set[str] = set()         # what the cells so far but the graded ones bind
    for k, (cell, tree) in enumerate(parsed):
        later = defined_below[k + 1] - lesson
        scanner.found = []
        scanner.allow_fold = cell.task not in FOLD_TASKS
        scanner.visit(tree)
        if cell.kind != "graded":
            bound |= {name for _, name in _global_bindings(tree)}
        if cell.kind not in ("student", "solution"):
            continue
        # a name that the cells up to this one bind is theirs where this cell reads it; but a
        # function reads its global names when it is called, maybe by a graded cell that bound
        # them
        for node, deferred in _global_loads(tree):
            if node.id in later and (deferred or node.id not in bound):
                scanner.report(node, node.id, "reference of a graded cell")
        for node, name in _global_bindings(tree):
            again = isinstance(node, (ast.Import, ast.ImportFrom)) \
                and import_paths(ast.Module([node], [])).get(name) == imports.get(name)
            if name in imports and not again:
                scanner.report(node, f"{name} = … (the lesson's {imports[name]})",
                               "indirect access")
            elif name in relied_on and name not in imports:
                scanner.report(node, f"{name} = … (the lesson's, which a graded cell uses)",
                               "indirect access")
        lines = cell.source.splitlines()
        for line, name, kind in scanner.found:
            text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
            if text in cell.scaffold:
                continue
            if cell.kind == "student" and kind == "forbidden API":
                continue
            findings.append(Finding(cell.label, line, name, kind,
                                    cell.task if cell.kind == "solution" else None))
    return sorted(set(findings), key=lambda f: (f.file, f.line, f.name, f.task or ""))


def import_paths(tree: ast.Module) -> dict[str, str]:
    """name → the dotted path an import statement of `tree` binds it to."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                bound[a.asname or a.name.split(".")[0]] = a.name if a.asname \
                    else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            for a in node.names:
                bound[a.asname or a.name] = f"{node.module}.{a.name}"
    return bound


def _reads_before_binding(tree: ast.Module, name: str) -> bool:
    """Whether a cell reads global `name` before (or without) a statement of its own that binds
    it: the value it reads is another cell's."""
    for stmt in tree.body:        # a statement that binds it (a loop over it) binds it first
        if any(n == name for _, n in _global_bindings(ast.Module([stmt], []))):
            return False
        if any(node.id == name for node, _ in _global_loads(stmt)):
            return True
    return False


def _global_loads(node: ast.AST, local: frozenset[str] = frozenset(),
                  deferred: bool = False) -> Iterator[tuple[ast.Name, bool]]:
    """(name, deferred) for the names a cell reads from the notebook's namespace: at its top
    level, or (deferred: when it is called) in a function, a lambda or a comprehension whose
    own names — parameters, assignments — they are not."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        args = node.args
        for default in [*args.defaults, *args.kw_defaults, *getattr(node, "decorator_list", [])]:
            if default is not None:
                yield from _global_loads(default, local, deferred)
        body = node.body if isinstance(node.body, list) else [node.body]
        declared = {n for stmt in body for g in ast.walk(stmt) if isinstance(g, ast.Global)
                    for n in g.names}
        own = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg,
                               args.kwarg] if a}
        own |= {n for stmt in body for _, n in _global_bindings(ast.Module([stmt], []))}
        for stmt in body:
            yield from _global_loads(stmt, local | (own - declared), True)
        return
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        local = local | {n.id for g in node.generators for n in ast.walk(g.target)
                         if isinstance(n, ast.Name)}
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in local:
        yield node, deferred
    for child in ast.iter_child_nodes(node):
        yield from _global_loads(child, local, deferred)


def _global_bindings(tree: ast.AST) -> Iterator[tuple[ast.AST, str]]:
    """(node, name) for every name a cell binds in the notebook's namespace: assignments, loop
    and with targets, del, imports, functions and classes — not what a function or class body
    binds for itself."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node, node.name
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            yield node, node.id
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                yield node, a.asname or a.name.split(".")[0]
        yield from _global_bindings(node)
