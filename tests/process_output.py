"""Processes the tests started that are still running, so a failing test reports their output.

A subprocess' log is often the only witness of why a test failed (a server that never answered
a handshake, a worker that crashed): the report hook in ``tests/conftest.py`` attaches the
output of every process registered here to the report of a test that fails.
"""

from __future__ import annotations

from collections.abc import Callable

#: id(owner) -> (name, output collected so far, whether it still runs).
LIVE: dict[int, tuple[str, Callable[[], str], Callable[[], bool]]] = {}

#: Only the end of a long log is attached: that is where a failure shows.
TAIL_CHARS = 20_000


def register(owner: object, name: str, output: Callable[[], str],
             running: Callable[[], bool]) -> None:
    LIVE[id(owner)] = (name, output, running)


def unregister(owner: object) -> None:
    LIVE.pop(id(owner), None)


def sections() -> list[tuple[str, str]]:
    """(title, output tail) of every live process, for a test report."""
    found = []
    for name, output, _ in list(LIVE.values()):
        try:
            text = output()
        except Exception as exc:  # noqa: BLE001 - a report must never fail because of this
            text = f"<output unavailable: {exc!r}>"
        found.append((f"output of {name}", text[-TAIL_CHARS:]))
    return found


def forget_exited() -> None:
    """Drop processes that have exited (after a test: they can explain no later failure)."""
    for key, (_, _, running) in list(LIVE.items()):
        if not running():
            del LIVE[key]
