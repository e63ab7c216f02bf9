"""The Lua scripts of the Redis layer, read from ``lua/`` once, when the package is imported.

Each layer operation is one script call, one round trip. The scripts live in ``.lua`` files so
they read (and highlight) as Lua; shared helpers sit in files of their own, pulled in by a line
``-- include: <file>.lua`` in the script that needs them, at the point where that script needs
them (the send script defines them only after its fast path, which must not pay for them).
"""

from __future__ import annotations

from importlib import resources

_INCLUDE = "-- include: "

#: The scripts the layer runs, by the name it calls them with.
SCRIPT_NAMES = ("send", "push", "group_send", "group_members", "pop", "uncount")


def load_script(name: str, _including: tuple[str, ...] = ()) -> str:
    """The source of ``lua/<name>``, its include lines replaced by the files they name."""
    if name in _including:
        raise ValueError(f"Lua include cycle: {' -> '.join((*_including, name))}")
    text = (resources.files(__package__) / "lua" / name).read_text(encoding="utf-8")
    parts = []
    for line in text.splitlines(keepends=True):
        if line.startswith(_INCLUDE):
            parts.append(load_script(line[len(_INCLUDE):].strip(), (*_including, name)))
        else:
            parts.append(line)
    return "".join(parts)


#: Script name -> complete Lua source.
SCRIPTS: dict[str, str] = {name: load_script(f"{name}.lua") for name in SCRIPT_NAMES}
