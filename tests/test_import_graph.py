"""tinyeff's modules import each other without cycles, except the autograd core (tensor <-> ops).

The graph is read statically with ``ast`` from every .py file under tinyeff/. What counts as an edge:

- every ``import`` and ``from ... import`` statement, wherever it sits: module level, inside a
  function, under ``try``/``if``. A function-level import runs too, just later; a cycle hidden
  inside a function is still a cycle (it decides import order and breaks when the function is
  called first from the other side).
- ``from pkg import name`` is an edge to module ``pkg.name`` when that is a module, else to ``pkg``
  (a name defined in ``pkg/__init__.py``). Compiled extensions (``_tinyeff_c``) import nothing.
- Not counted: the parent packages Python initialises implicitly before a submodule (every
  ``tinyeff.x.y`` would otherwise depend on ``tinyeff/__init__``, which imports most of the
  library), and ``importlib.import_module(name)`` with a name held as data: that is run-time
  dispatch through a table (``io.READERS``, the CLI's command list), which exists exactly so the
  table's owner does not depend on the modules it names.

tensor <-> ops is allowed: ``Tensor`` methods call ops and every op builds Tensors, so the two halves
of the autograd core load together (tensor.py imports ops at its end for that reason).
"""
import ast
import functools
import os

import pytest

import tinyeff

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(tinyeff.__file__)))
PACKAGE_DIR = os.path.dirname(os.path.abspath(tinyeff.__file__))


def _modules():
    """dict module name -> (path, is_package) for every .py file under tinyeff/."""
    out = {}
    for directory, _, files in os.walk(PACKAGE_DIR):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(directory, f)
                name = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                is_package = name.endswith(".__init__")
                out[name[:-len(".__init__")] if is_package else name] = (path, is_package)
    return out


def _is_extension(name):
    directory = os.path.join(ROOT, *name.split(".")[:-1])
    leaf = name.rsplit(".", 1)[-1] + "."
    return os.path.isdir(directory) and any(f.startswith(leaf) and f.endswith((".so", ".pyd"))
                                            for f in os.listdir(directory))


def _imported_names(tree, package):
    """Every dotted module name an import statement in ``tree`` names (``from`` imports: pkg.name)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((a.name, None) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            yield from ((base, a.name) for a in node.names)


@functools.lru_cache(maxsize=None)
def import_graph():
    """dict module -> set of tinyeff modules it imports (see the module docstring for the rules)."""
    modules = _modules()
    graph = {name: set() for name in modules}
    for name, (path, is_package) in modules.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        package = name if is_package else name.rpartition(".")[0]
        for base, leaf in _imported_names(tree, package):
            if not base.startswith("tinyeff"):
                continue
            target = f"{base}.{leaf}" if leaf and f"{base}.{leaf}" in modules else base
            if leaf and _is_extension(f"{base}.{leaf}"):
                continue
            while target and target not in modules:          # `import tinyeff.a.b` names module a.b
                target = target.rpartition(".")[0]
            if target and target != name:
                graph[name].add(target)
    return graph


def cycles(graph):
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _autograd_core(module):
    return module == "tinyeff.tensor" or module == "tinyeff.ops" or module.startswith("tinyeff.ops.")


def _path_within(graph, component):
    """One cycle through ``component`` as a readable chain a -> b -> ... -> a."""
    members, start = set(component), component[0]
    path, seen, node = [start], {start}, start
    while True:
        nxt = sorted(n for n in graph[node] if n in members)
        node = next((n for n in nxt if n == start), None) or next((n for n in nxt if n not in seen), nxt[0])
        path.append(node)
        if node in seen:
            return " -> ".join(path[path.index(node):])
        seen.add(node)


def test_no_import_cycle_except_tensor_and_ops():
    graph = import_graph()
    bad = [c for c in cycles(graph) if not all(_autograd_core(m) for m in c)]
    assert not bad, "import cycles:\n" + "\n".join(f"  {_path_within(graph, c)}  (all: {', '.join(c)})"
                                                   for c in bad)


def test_the_graph_sees_function_level_imports():
    graph = import_graph()
    assert "tinyeff.quant.qat" in graph and "tinyeff.train.callbacks" in graph["tinyeff.quant.qat"]
    assert "tinyeff.models" in graph["tinyeff.io"]                 # imported inside build_from_header


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("name", ["tinyeff.io", "tinyeff.compress", "tinyeff.quant", "tinyeff.train"])
def test_core_packages_import_cleanly_in_a_fresh_interpreter(name):
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-c", f"import {name}"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
