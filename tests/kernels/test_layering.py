"""The kernel package sits below everything else: it imports only itself, tinyeff.errors and the
compiled extension, so ops, layers and tools can all build on it without an import cycle."""
import ast
import pathlib

import tinyeff.kernels

ALLOWED = ("tinyeff.kernels", "tinyeff.errors", "tinyeff._tinyeff_c")


def _tinyeff_imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tinyeff"):
            names = [node.module] if node.module != "tinyeff" else [f"tinyeff.{a.name}" for a in node.names]
            yield from names
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("tinyeff"))


def test_kernels_import_nothing_above_them():
    root = pathlib.Path(tinyeff.kernels.__file__).parent
    bad = [f"{path.relative_to(root)}: {name}" for path in sorted(root.rglob("*.py"))
           for name in _tinyeff_imports(path) if not name.startswith(ALLOWED)]
    assert not bad, "kernels/ must not import ops, nn or tools:\n" + "\n".join(bad)
