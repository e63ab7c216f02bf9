"""No module of ``channels`` imports, at import time, a module that imports it back.

A cycle makes the result depend on which module a process happens to import first (a name
missing from a half-initialised module), and it hides which module is the lower one. The graph
is built from the source with ``ast``: only the imports that run when a module is imported
count (top level, and inside top-level ``if``/``try``/``with`` and class bodies); imports under
``if TYPE_CHECKING:`` and inside functions run later or never.
"""

from __future__ import annotations

import ast
import textwrap
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import channels

Graph = dict[str, set[str]]

CHANNELS_DIR = Path(channels.__file__).parent


def module_names(package_dir: Path) -> dict[str, Path]:
    """Dotted name -> file, for every module under ``package_dir`` (itself a package)."""
    names = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_time_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements that run when a module whose top level is ``body`` is imported."""
    for statement in body:
        if isinstance(statement, ast.Import | ast.ImportFrom):
            yield statement
        elif isinstance(statement, ast.If):
            if not _is_type_checking(statement.test):
                yield from import_time_imports(statement.body)
            yield from import_time_imports(statement.orelse)
        elif isinstance(statement, ast.Try | ast.TryStar):
            for block in (statement.body, statement.orelse, statement.finalbody):
                yield from import_time_imports(block)
            for handler in statement.handlers:
                yield from import_time_imports(handler.body)
        elif isinstance(statement, ast.With | ast.For | ast.While):
            yield from import_time_imports(statement.body)
            yield from import_time_imports(getattr(statement, "orelse", []))
        elif isinstance(statement, ast.ClassDef):
            # A class body runs at import time; its methods' bodies do not.
            yield from import_time_imports(statement.body)


def _resolve_from(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module if is_package else module.rpartition(".")[0]
    parts = package.split(".")
    base = parts[: len(parts) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph(package_dir: Path) -> Graph:
    """Module -> the modules of the same package it imports at import time.

    ``from pkg import name`` counts as importing ``pkg.name`` when that is a module, else
    ``pkg``. Parent packages a dotted import runs implicitly are not edges: a package is always
    initialised before its submodules, so a package importing its own submodules is no cycle.
    """
    names = module_names(package_dir)
    graph: Graph = {name: set() for name in names}
    for name, path in names.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in import_time_imports(tree.body):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                source = _resolve_from(name, is_package, node)
                targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in names
                           else source for alias in node.names]
            graph[name].update(target for target in targets if target in names)
    return graph


def strongly_connected_components(graph: Graph) -> list[list[str]]:
    """Tarjan's algorithm (iterative, so deep graphs do not hit the recursion limit); each
    component sorted, components in a stable order."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = lowlink[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = lowlink[successor] = counter
                    counter += 1
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph.get(successor, ())))))
                    break
                if successor in on_stack:
                    lowlink[node] = min(lowlink[node], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    lowlink[parent] = min(lowlink[parent], lowlink[node])
                if lowlink[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return sorted(components)


def shortest_cycle(graph: Graph, component: list[str]) -> list[str]:
    """A shortest cycle through the component's first module, staying inside the component;
    first and last element are that module. Empty if the component has no cycle (one module
    that does not import itself)."""
    start = component[0]
    members = set(component)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for successor in sorted(graph[node]):
            if successor == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if successor in members and successor not in came_from:
                came_from[successor] = node
                queue.append(successor)
    return []


def import_cycles(graph: Graph) -> list[list[str]]:
    """One cycle per strongly connected component that has one."""
    cycles = (shortest_cycle(graph, component)
              for component in strongly_connected_components(graph))
    return [cycle for cycle in cycles if cycle]


# -- the package itself ------------------------------------------------------------------------


def describe_cycles(graph: Graph) -> list[str]:
    """One line per strongly connected component with a cycle: a shortest cycle, then every
    module of the component (breaking that one cycle may leave another among them)."""
    lines = []
    for component in strongly_connected_components(graph):
        cycle = shortest_cycle(graph, component)
        if cycle:
            lines.append(" -> ".join(cycle) + f"  (component: {', '.join(component)})")
    return lines


def test_no_module_level_import_cycle_inside_channels():
    cycles = describe_cycles(import_graph(CHANNELS_DIR))
    assert cycles == [], "import cycles inside channels/:\n" + "\n".join(cycles)


def test_the_graph_of_channels_sees_its_real_imports():
    """Guards the test above against passing on an empty graph."""
    graph = import_graph(CHANNELS_DIR)
    assert "channels.channel" in graph["channels.message"]
    assert "channels.routing" in graph["channels.asgi"]
    assert "channels.server.http_protocol" in graph["channels.server.server"]
    assert "channels.layers.base" in graph["channels.layers.inmemory"]
    # Type-only: under TYPE_CHECKING, so not an import-time edge.
    assert "channels.server.server" not in graph["channels.server.http_protocol"]


# -- the detector, on graphs and packages whose answer is known ---------------------------------


def test_cycle_finder_names_every_cycle_of_a_synthetic_graph():
    graph = {
        "a": {"b"}, "b": {"c"}, "c": {"a", "d"},  # a -> b -> c -> a
        "d": {"e"}, "e": set(),                    # a chain leaving the cycle
        "f": {"f"},                                # a module importing itself
        "g": {"h"}, "h": {"g", "e"},               # g <-> h
        "i": {"a"},                                # reaches a cycle, is not in it
    }
    assert strongly_connected_components(graph) == [
        ["a", "b", "c"], ["d"], ["e"], ["f"], ["g", "h"], ["i"],
    ]
    assert import_cycles(graph) == [["a", "b", "c", "a"], ["f", "f"], ["g", "h", "g"]]


def test_cycle_finder_reports_the_shortest_cycle_of_a_component():
    # a -> b -> c -> d -> a, with a shortcut c -> a.
    graph = {"a": {"b"}, "b": {"c"}, "c": {"d", "a"}, "d": {"a"}}
    assert import_cycles(graph) == [["a", "b", "c", "a"]]


def test_cycle_finder_finds_nothing_in_an_acyclic_graph():
    graph = {"a": {"b", "c"}, "b": {"c"}, "c": set()}
    assert import_cycles(graph) == []


def test_cycle_finder_handles_a_long_chain_without_recursion():
    graph = {f"m{n}": {f"m{n + 1}"} for n in range(5000)}
    graph["m5000"] = {"m0"}
    (cycle,) = import_cycles(graph)
    assert len(cycle) == 5002 and cycle[0] == cycle[-1] == "m0"


def _write(root: Path, files: dict[str, str]) -> None:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))


def test_graph_counts_only_imports_that_run_at_import_time(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "from pkg import core\n",
        "pkg/core.py": """
            from typing import TYPE_CHECKING
            import os
            from . import helpers
            if TYPE_CHECKING:
                from pkg import lazy
            else:
                import pkg.fallback
            try:
                from .sub.deep import thing
            except ImportError:
                from pkg.sub import other
            class Holder:
                from pkg import in_class
                def method(self):
                    from pkg import in_method
            def function():
                import pkg.in_function
        """,
        "pkg/helpers.py": "from .sub import deep\nfrom pkg import core_name_not_a_module\n",
        "pkg/lazy.py": "",
        "pkg/fallback.py": "",
        "pkg/in_class.py": "",
        "pkg/in_method.py": "",
        "pkg/in_function.py": "",
        "pkg/sub/__init__.py": "from . import deep\n",
        "pkg/sub/deep.py": "from .. import helpers\n",
        "pkg/sub/other.py": "from ..sub import deep as renamed\n",
    })
    graph = import_graph(tmp_path / "pkg")
    assert graph["pkg"] == {"pkg.core"}
    assert graph["pkg.core"] == {"pkg.helpers", "pkg.fallback", "pkg.sub.deep", "pkg.sub.other",
                                 "pkg.in_class"}
    assert graph["pkg.helpers"] == {"pkg.sub.deep", "pkg"}
    assert graph["pkg.sub"] == {"pkg.sub.deep"}
    assert graph["pkg.sub.deep"] == {"pkg.helpers"}
    assert graph["pkg.sub.other"] == {"pkg.sub.deep"}
    assert graph["pkg.lazy"] == set()
    assert describe_cycles(graph) == [
        "pkg -> pkg.core -> pkg.helpers -> pkg"
        "  (component: pkg, pkg.core, pkg.helpers, pkg.sub.deep, pkg.sub.other)",
    ]
