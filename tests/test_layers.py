"""The Python package's layering: no import cycle between its modules, counting imports inside
functions and ``TYPE_CHECKING`` blocks too (a deferred import hides a cycle, it does not remove
it), and the package's public names.

The graph is read from the source with :mod:`ast`, so it needs no import of the package. An import
of ``a.b.c`` also runs ``a/b/__init__.py``, so it counts as an import of the package ``a.b``
(except ``tokforge`` itself, the facade every import runs first, and the importer's own packages).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import tokforge

PACKAGE = Path(__file__).resolve().parent.parent / "python" / "tokforge"


def _modules(root: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    # the compiled extension is known by its stub, _core.pyi
    paths = [
        *root.rglob("*.py"),
        *(p for p in root.rglob("*.pyi") if not p.with_suffix(".py").exists()),
    ]
    for path in sorted(paths):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_package(name: str, modules: dict[str, Path]) -> bool:
    return modules[name].name == "__init__.py"


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules ``name`` imports anywhere in its source."""
    package = name if _is_package(name, modules) else name.rpartition(".")[0]
    explicit: set[str] = set()  # the modules named by the import
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            explicit.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                # `from pkg import sub` imports the submodule; `from pkg import f`, pkg itself
                explicit.add(sub if sub in modules else source)
    root = name.split(".")[0]
    own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    out = {m for m in explicit if m in modules and m != name}
    for target in explicit:
        # the packages an import runs on the way to its module
        parts = target.split(".")
        for i in range(len(parts) - 1, 1, -1):
            parent = ".".join(parts[:i])
            if parent in modules and parent != name and parent not in own and parent != root:
                out.add(parent)
    return out


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    modules = _modules(root)
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path ``[a, b, ..., a]``, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_graph_sees_deferred_relative_and_package_imports(tmp_path):
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "a.py").write_text("def f():\n    from .sub import b\n")
    (root / "sub" / "__init__.py").write_text("from . import c\n")
    (root / "sub" / "b.py").write_text("")
    (root / "sub" / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..a import f\n"
    )
    graph = import_graph(root)
    assert graph["pkg.a"] == {"pkg.sub", "pkg.sub.b"}
    assert graph["pkg.sub"] == {"pkg.sub.c"}
    assert find_cycle(graph) == ["pkg.a", "pkg.sub", "pkg.sub.c", "pkg.a"]


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


# Written by hand: a new public name is a decision, not a side effect of an import.
PUBLIC = [
    "DisallowedSpecialTokenError",
    "StreamDecoder",
    "Tokenizer",
    "TokforgeError",
    "TrainResult",
    "UnknownTokenError",
    "__version__",
    "artifacts",
    "compare",
    "errors",
    "explain",
    "get_encoding",
    "lineage",
    "list_encoding_names",
    "resolve_tokenizer",
    "sample_path",
    "sample_text",
    "train",
    "train_merges",
]


# The submodules `import tokforge` loads, which Python puts on the package as attributes.
LOADED_MODULES = [
    "encodings",
    "files",
    "inspect",
    "interop",
    "protocol",
    "reference",
    "registry",
    "sample",
    "tokenizer",
    "training",
]


def test_public_names():
    assert sorted(tokforge.__all__) == PUBLIC
    # in a fresh interpreter: other tests import more submodules
    code = "import tokforge; print(' '.join(n for n in dir(tokforge) if not n.startswith('_')))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    ).stdout.split()
    assert out == sorted([*(n for n in PUBLIC if not n.startswith("_")), *LOADED_MODULES])
    assert callable(tokforge.train) and callable(tokforge.artifacts)
    assert "annotations" not in dir(tokforge) and "PackageNotFoundError" not in dir(tokforge)
