"""The import structure of keras_optlab: no cycles, no private names across modules.

Every ``.py`` file under ``keras_optlab/`` is parsed with :mod:`ast` (nothing is
imported), and every ``import`` / ``from ... import`` of a keras_optlab module becomes an
edge of two graphs:

* the **module graph**: module → module (``keras_optlab.callbacks`` →
  ``keras_optlab.curvature.hvp``). ``from P import name`` is an edge to ``P.name`` when
  that is a module, else to ``P`` (a package's ``__init__``). The implicit import of a
  module's parent packages is not an edge: every child of a package that re-exports its
  children would otherwise be in a cycle with it.
* the **package graph**: one node per top-level part of keras_optlab (a subpackage such
  as ``optimizers`` or ``curvature``, or a top-level module such as ``callbacks``);
  ``optimizers`` → ``curvature`` when any module of the first imports one of the second.
  The root ``keras_optlab/__init__.py`` is left out of it: it is the public surface,
  re-exporting everything, and it is in the module graph like every other module.

**Lazy imports.** An import inside a function runs when the function is first called.
That is how keras_optlab reaches optional dependencies (TensorFlow-only code, the lab's
matplotlib and scikit-learn, Keras Tuner) and how the CLI keeps its handlers' imports
out of ``--help``. A lazy import cannot fail at import time, but a cycle through one is
still two modules that each need the other: a sign the layers are not layers. So lazy
imports are in the graphs too, in a separate test: ``test_no_import_cycle`` (imports at
module level, including those under ``try``/``if``) fails on a cycle Python would hit
while importing; ``test_no_import_cycle_with_lazy_imports`` (every import) fails on a
cycle that only calls close. A cycle listed by the second only is still a layering error
to fix (move the shared piece down), not legitimate code.

**Private names.** No module imports a leading-underscore name from another keras_optlab
module, nor reads one as an attribute of an imported keras_optlab module
(``hvp._ModelOracle``). A private *module* (``lab/_optional.py``) serves its own package
only; outside it, three are allowed, as modules only: ``keras_optlab._checks`` (every
argument check; its package is the root, so it serves everyone),
``keras_optlab._batches`` (the checks of data batches, the Keras-aware side of
``_checks``) and
``keras_optlab._keras_hooks`` (the one place that touches private Keras
internals): ``from keras_optlab import _keras_hooks``, then
``_keras_hooks.reset_train_function(model)``.

**Tests.** A test module (``test_*.py``) or a ``conftest.py`` is never imported by
another file under ``tests/``: shared test helpers live in ``tests/helpers.py`` (or a
folder's own helper module, such as ``tests/curvature/exact.py``).
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = "keras_optlab"
# Private modules importable (as modules) from anywhere in the package.
SHARED_PRIVATE_MODULES = {"keras_optlab._checks", "keras_optlab._batches", "keras_optlab._keras_hooks"}


def _module_name(path, top):
    parts = list(path.relative_to(top.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_package(path):
    return path.name == "__init__.py"


class _Imports(ast.NodeVisitor):
    """Every import of one file: (target module, imported name or None, line, lazy)."""

    def __init__(self, module, is_package):
        self.module, self.is_package = module, is_package
        self.found = []  # (dotted "from" module or imported module, name or None, lineno, lazy)
        self.depth = 0

    def _function(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_Import(self, node):
        for alias in node.names:
            self.found.append((alias.name, None, node.lineno, self.depth > 0, alias.asname))

    def visit_ImportFrom(self, node):
        base = node.module or ""
        if node.level:
            package = self.module if self.is_package else self.module.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}" if base else package
        for alias in node.names:
            self.found.append((base, alias.name, node.lineno, self.depth > 0, alias.asname))


def _parse(top):
    """{module: (path, tree, [(target, name, line, lazy, asname)])} for every file under ``top``."""
    modules = {}
    for path in sorted(top.rglob("*.py")):
        name = _module_name(path, top)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        visitor = _Imports(name, _is_package(path))
        visitor.visit(tree)
        modules[name] = (path, tree, visitor.found)
    return modules


MODULES = _parse(ROOT / PACKAGE)


def _internal(name, prefix=PACKAGE):
    return name == prefix or name.startswith(prefix + ".")


def _edges(modules, lazy):
    """[(source, target, "file:line")] of keras_optlab-internal imports."""
    edges = []
    for source, (path, _, found) in modules.items():
        for base, name, line, is_lazy, _ in found:
            if (is_lazy and not lazy) or not _internal(base):
                continue
            target = f"{base}.{name}" if name and f"{base}.{name}" in modules else base
            if target != source:
                edges.append((source, target, f"{path.relative_to(ROOT)}:{line}" + (" (lazy)" if is_lazy else "")))
    return edges


def _component(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _package_edges(edges):
    out = []
    for source, target, where in edges:
        a, b = _component(source), _component(target)
        if a and b and a != b:
            out.append((a, b, f"{source} -> {target} at {where}"))
    return out


def _cycles(edges):
    """One cycle per strongly connected component with more than one node, as a list of
    (source, target, where) steps (Tarjan's algorithm, then a shortest path back)."""
    graph = {}
    for source, target, where in edges:
        graph.setdefault(source, {}).setdefault(target, where)
        graph.setdefault(target, {})
    index, low, stack, on_stack, components, counter = {}, {}, [], set(), [], [0]

    def strongconnect(node):  # iterative: no recursion limit on a deep graph
        work = [(node, iter(graph[node]))]
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        while work:
            current, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                    break
                if child in on_stack:
                    low[current] = min(low[current], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[current])
                if low[current] == index[current]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == current:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            strongconnect(node)

    cycles = []
    for component in components:
        members = set(component)
        start = component[0]
        # Breadth-first from start back to start, inside the component.
        previous, frontier, found = {}, [start], None
        while frontier and found is None:
            nxt = []
            for node in frontier:
                for child in sorted(graph[node]):
                    if child not in members:
                        continue
                    if child == start:
                        found = node
                        break
                    if child not in previous:
                        previous[child] = node
                        nxt.append(child)
                if found is not None:
                    break
            frontier = nxt
        path = [found]
        while path[-1] != start:
            path.append(previous[path[-1]])
        path.reverse()
        path.append(start)
        cycles.append([(a, b, graph[a][b]) for a, b in zip(path, path[1:])])
    return cycles


def _describe(cycles):
    lines = []
    for cycle in cycles:
        lines.append(" -> ".join([cycle[0][0]] + [b for _, b, _ in cycle]))
        lines += [f"    {a} -> {b}: {where}" for a, b, where in cycle]
    return "\n".join(lines)


def _assert_acyclic(lazy):
    edges = _edges(MODULES, lazy=lazy)
    problems = []
    module_cycles = _cycles(edges)
    if module_cycles:
        problems.append("module import cycles:\n" + _describe(module_cycles))
    package_cycles = _cycles(_package_edges(edges))
    if package_cycles:
        problems.append("package import cycles (top-level parts of keras_optlab):\n" + _describe(package_cycles))
    assert not problems, "\n\n".join(problems)


def test_the_graph_is_built():
    """The parser sees the package: a known edge at module level and a known lazy one."""
    eager = {(a, b) for a, b, _ in _edges(MODULES, lazy=False)}
    every = {(a, b) for a, b, _ in _edges(MODULES, lazy=True)}
    assert ("keras_optlab.callbacks", "keras_optlab.curvature.spectrum") in eager
    assert ("keras_optlab.cli", "keras_optlab.lab.init_search") in every - eager
    assert _cycles([("a", "b", "1"), ("b", "c", "2"), ("c", "a", "3"), ("c", "d", "4")]) == [
        [("a", "b", "1"), ("b", "c", "2"), ("c", "a", "3")]
    ]


def test_no_import_cycle():
    """Imports at module level (what runs while Python imports the package): no cycle."""
    _assert_acyclic(lazy=False)


def test_no_import_cycle_with_lazy_imports():
    """Every import, those inside functions included: no cycle (see the module docstring)."""
    _assert_acyclic(lazy=True)


# DESIGN.md: arrows point down only. Which top-level parts each part must not import
# (lazy imports included): the application layers (cli, lab, tuning) sit on top of the
# library, and curvature sits under optimizers (Newton uses curvature.hvp).
FORBIDDEN = {
    "optimizers": {"tuning", "lab", "cli", "callbacks", "calibration"},
    "initializers": {"optimizers", "curvature", "tuning", "lab", "cli"},
    "curvature": {"optimizers", "tuning", "lab", "cli", "callbacks"},
    "tuning": {"lab", "cli"},
    "lab": {"cli"},
    "_checks": {"optimizers", "initializers", "curvature", "tuning", "lab", "cli"},
}


def test_arrows_point_down():
    problems = [
        where for a, b, where in _package_edges(_edges(MODULES, lazy=True)) if b in FORBIDDEN.get(a, ())
    ]
    assert not problems, "imports against the layering of DESIGN.md:\n" + "\n".join(problems)


def _private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_module_ok(importer, module):
    """May ``importer`` use the private module ``module`` (a dotted name with a private part)?"""
    parts = module.split(".")
    first = next(i for i, part in enumerate(parts) if _private(part))
    home = ".".join(parts[:first])  # the package the private module belongs to
    return importer == home or importer.startswith(home + ".")


def _private_violations(modules):
    problems = []
    for importer, (path, tree, found) in modules.items():
        where = str(path.relative_to(ROOT))
        module_names = {}  # local name -> internal module it is bound to
        for base, name, line, _, asname in found:
            if not _internal(base):
                continue
            if name is None:  # import a.b.c
                target = base
                if any(_private(part) for part in target.split(".")) and not (
                    target in SHARED_PRIVATE_MODULES or _private_module_ok(importer, target)
                ):
                    problems.append(f"{where}:{line}: imports the private module {target}")
                if asname:
                    module_names[asname] = target
                continue
            full = f"{base}.{name}"
            if full in modules:  # from package import module
                if any(_private(part) for part in full.split(".")) and not (
                    full in SHARED_PRIVATE_MODULES or _private_module_ok(importer, full)
                ):
                    problems.append(f"{where}:{line}: imports the private module {full}")
                module_names[asname or name] = full
                continue
            if _private(name) and base != importer:
                problems.append(f"{where}:{line}: imports the private name {name} from {base}")
            elif any(_private(part) for part in base.split(".")) and not _private_module_ok(importer, base):
                how = " (import it as a module)" if base in SHARED_PRIVATE_MODULES else ""
                problems.append(f"{where}:{line}: imports {name} from the private module {base}{how}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in module_names
                and _private(node.attr)
            ):
                problems.append(
                    f"{where}:{node.lineno}: reads the private name {node.attr} of {module_names[node.value.id]}"
                )
    return problems


def test_no_private_name_is_imported_from_another_module():
    problems = _private_violations(MODULES)
    assert not problems, "private names used across keras_optlab modules:\n" + "\n".join(problems)


def test_the_private_name_check_catches_each_kind():
    fake = {
        "keras_optlab.a": (ROOT / "keras_optlab/a.py", ast.parse("x = 1"), []),
        "keras_optlab._checks": (ROOT / "keras_optlab/_checks.py", ast.parse(""), []),
        "keras_optlab.p": (ROOT / "keras_optlab/p/__init__.py", ast.parse(""), []),
        "keras_optlab.p._hidden": (ROOT / "keras_optlab/p/_hidden.py", ast.parse(""), []),
        "keras_optlab.p.child": (
            ROOT / "keras_optlab/p/child.py", ast.parse(""),
            [("keras_optlab.p._hidden", "f", 1, False, None), ("keras_optlab", "_checks", 2, False, None)],
        ),
        "keras_optlab.b": (
            ROOT / "keras_optlab/b.py",
            ast.parse("import keras_optlab.a as a\na._secret\n"),
            [
                ("keras_optlab.a", "_x", 1, False, None),
                ("keras_optlab.p._hidden", "f", 2, True, None),
                ("keras_optlab.p", "_hidden", 3, False, None),
                ("keras_optlab.a", None, 4, False, "a"),
                ("keras_optlab", "_checks", 5, False, None),
            ],
        ),
    }
    problems = _private_violations(fake)
    assert [p.split(": ", 1)[1] for p in problems] == [
        "imports the private name _x from keras_optlab.a",
        "imports f from the private module keras_optlab.p._hidden",
        "imports the private module keras_optlab.p._hidden",
        "reads the private name _secret of keras_optlab.a",
    ]


def test_no_test_module_is_imported():
    """Shared test code lives in tests/helpers.py, not in a test module or a conftest."""
    problems = {}
    for name, (path, _, found) in _parse(ROOT / "tests").items():
        for base, imported, line, _, _ in found:
            for target in (base, f"{base}.{imported}" if imported else base):
                last = target.rpartition(".")[2]
                if _internal(target, "tests") and (last.startswith("test_") or last == "conftest"):
                    problems.setdefault(f"{path.relative_to(ROOT)}:{line}: imports {target}", None)
    problems = list(problems)
    assert not problems, "test modules imported by other files:\n" + "\n".join(problems)
