"""The shape of ``channels.layers.redis``: its modules import each other without cycles."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import channels.layers.redis as package


def module_imports() -> dict[str, set[str]]:
    """Module -> the package's modules it imports at module level (run at import time)."""
    graph: dict[str, set[str]] = {}
    for path in Path(package.__file__).parent.glob("*.py"):
        imported: set[str] = set()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.startswith(package.__name__ + "."):
                imported.add(node.module.rsplit(".", 1)[1])
            elif isinstance(node, ast.ImportFrom) and node.level:
                imported.add(node.module or "__init__")
        graph[path.stem] = imported
    return graph


def test_the_modules_of_the_package_import_each_other_without_cycles():
    graph = module_imports()
    assert {"layer", "sync_api", "async_api", "keys", "codec", "connections"} <= set(graph)
    order = list(graphlib.TopologicalSorter(graph).static_order())  # CycleError if not a DAG
    assert order[-1] == "__init__"

