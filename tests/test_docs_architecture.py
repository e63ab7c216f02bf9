"""``docs/architecture.md`` names real files, classes, functions and methods, so the page cannot
drift from the code it describes.

In the page, inside backticks: a path (``channels/worker.py``, ``channels/layers/``) must
exist, and so must a file or folder name (``sync_api.py``, ``lua/``) in a paragraph, list item
or table row that names its folder first; ``name()`` or ``Class.method()``
must be defined in ``channels/`` and, when the paragraph or list item names ``.py`` files, in
one of them (a method inherited from a base class counts where the base defines it);
``Class.attribute`` must be a class attribute or an attribute its methods set on ``self``; and a
lone CamelCase name must be a class of ``channels/``.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "architecture.md"

PATH = re.compile(r"^[\w-]+(?:/[\w.-]+)*/$|^[\w-]+(?:/[\w.-]+)+$")
RELATIVE = re.compile(r"^[\w-]+(?:\.py|\.lua|/)$")
CALL = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)\(\)$")
ATTRIBUTE = re.compile(r"^([A-Z]\w*)\.([A-Za-z_]\w*)$")
CLASS = re.compile(r"^[A-Z][a-z]\w*$")
PY_FILE = re.compile(r"`([\w./-]+\.py)`")


@dataclass
class ClassInfo:
    path: str
    bases: list[str]
    members: set[str] = field(default_factory=set)


@dataclass
class CodeIndex:
    """What ``channels/`` defines: module-level functions and classes, per file."""

    functions: dict[str, set[str]] = field(default_factory=dict)  # name -> files
    classes: dict[str, list[ClassInfo]] = field(default_factory=dict)

    @classmethod
    def of(cls, package_dir: Path) -> CodeIndex:
        index = cls()
        for path in sorted(package_dir.rglob("*.py")):
            relative = path.relative_to(package_dir.parent).as_posix()
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in tree.body:
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    index.functions.setdefault(node.name, set()).add(relative)
                elif isinstance(node, ast.ClassDef):
                    index.classes.setdefault(node.name, []).append(_class_info(node, relative))
        return index

    def defining_files(self, class_name: str, member: str, seen: frozenset = frozenset()) -> set:
        """Files where ``member`` of ``class_name`` is defined, along its bases (by name)."""
        files = set()
        for info in self.classes.get(class_name, []):
            if member in info.members:
                files.add(info.path)
                continue
            for base in info.bases:
                if base not in seen:
                    files |= self.defining_files(base, member, seen | {class_name})
        return files

    def files_of_call(self, name: str) -> set[str]:
        if "." in name:
            return self.defining_files(*name.split("."))
        return self.functions.get(name, set()) | {info.path for info in self.classes.get(name, [])}


def _class_info(node: ast.ClassDef, path: str) -> ClassInfo:
    bases = [base.id if isinstance(base, ast.Name) else base.attr
             for base in node.bases if isinstance(base, ast.Name | ast.Attribute)]
    info = ClassInfo(path, bases)
    for statement in node.body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            info.members.add(statement.name)
            for inner in ast.walk(statement):  # attributes the methods set on self
                targets = (inner.targets if isinstance(inner, ast.Assign) else
                           [inner.target] if isinstance(inner, ast.AnnAssign) else [])
                info.members.update(
                    target.attr for target in targets
                    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                    and target.value.id == "self")
        elif isinstance(statement, ast.Assign):
            info.members.update(t.id for t in statement.targets if isinstance(t, ast.Name))
        elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            info.members.add(statement.target.id)
    return info


def blocks(markdown: str) -> list[str]:
    """Paragraphs and list items (a table row is one block), outside fenced code."""
    found: list[list[str]] = []
    in_fence = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        starts_item = re.match(r"^\s*(\d+\.|[-*]|\|)\s", line)
        if not line.strip():
            found.append([])
        elif starts_item or not found:
            found.append([line])
        else:
            found[-1].append(line)
    return [" ".join(block) for block in found if block]


def broken_references(markdown: str, index: CodeIndex, root: Path) -> list[str]:
    problems = []
    for block in blocks(markdown):
        files_here = set(PY_FILE.findall(block))
        folders: list[Path] = []  # named so far in this block: later bare names are inside
        for token in re.findall(r"`([^`]+)`", block):
            if PATH.match(token) or (RELATIVE.match(token) and folders):
                bases = ([root] if PATH.match(token) else []) + folders
                found = [base / token for base in bases if (base / token).exists()]
                if not found:
                    looked_in = [str(base.relative_to(root)) for base in bases]
                    problems.append(f"{token}: no such file or folder in {looked_in}")
                elif token.endswith("/"):
                    folders.append(found[0])
            elif call := CALL.match(token):
                defined_in = index.files_of_call(call.group(1))
                if not defined_in:
                    problems.append(f"{token}: not defined in channels/")
                elif files_here and not defined_in & files_here:
                    problems.append(f"{token}: defined in {sorted(defined_in)}, but the text "
                                    f"names {sorted(files_here)}")
            elif attribute := ATTRIBUTE.match(token):
                if not index.defining_files(*attribute.groups()):
                    problems.append(f"{token}: no such attribute")
            elif CLASS.match(token) and token not in index.classes:
                problems.append(f"{token}: no such class in channels/")
    return problems


def test_architecture_page_names_only_what_exists():
    index = CodeIndex.of(ROOT / "channels")
    assert broken_references(PAGE.read_text(encoding="utf-8"), index, ROOT) == []


def test_architecture_page_is_checked_at_all():
    """Guards the test above against passing because it found nothing to check."""
    text = PAGE.read_text(encoding="utf-8")
    tokens = [token for block in blocks(text) for token in re.findall(r"`([^`]+)`", block)]
    assert sum(bool(CALL.match(token)) for token in tokens) >= 30
    assert sum(bool(PATH.match(token)) for token in tokens) >= 15
    assert sum(bool(RELATIVE.match(token)) for token in tokens) >= 15


def test_the_check_catches_missing_and_misplaced_names():
    index = CodeIndex.of(ROOT / "channels")
    page = "\n".join([
        "1. `Server.run()` in `channels/server/server.py`, inherited `RedisChannelLayer.send()`",
        "   in `channels/layers/redis/sync_api.py`, `Server.reply_protocols`, `Worker`.",
        "2. `Server.fly()` in `channels/server/server.py`.",
        "3. `Router.check_default()` in `channels/server/server.py`.",
        "4. `channels/nowhere.py`, `Server.no_such_attribute`, `NoSuchClass`, `no_function()`.",
        "| `channels/layers/` | `redis/` (`sync_api.py`, `lua/`), `inmemory.py`, `flying.py` |",
        "```",
        "`Ignored.in_code()`",
        "```",
    ])
    assert broken_references(page, index, ROOT) == [
        "Server.fly(): not defined in channels/",
        "Router.check_default(): defined in ['channels/routing.py'], but the text names "
        "['channels/server/server.py']",
        "channels/nowhere.py: no such file or folder in ['.']",
        "Server.no_such_attribute: no such attribute",
        "NoSuchClass: no such class in channels/",
        "no_function(): not defined in channels/",
        "flying.py: no such file or folder in ['channels/layers', 'channels/layers/redis', "
        "'channels/layers/redis/lua']",
    ]
