"""Fixtures of the reliability suite, and the table of what it measured, printed at the end.

Each test records rows (``record_row``); the rows are written to files under the directory in
``CHANNELS_RELIABILITY_ROWS`` (set here by the process that runs the session, inherited by
xdist workers) and printed by ``pytest_terminal_summary``. When the suite runs under xdist as
part of the whole test tree, the controlling process may not load this file; the workers then
write their rows under their own temporary directory and nothing is printed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.reliability import rows
from tests.reliability.harness import Deployment
from tests.reliability.load import EventLoopThread

#: Set by this process when it created the directory (and so prints and removes it).
_OWNED_ROWS_DIR: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or os.environ.get(rows.ROWS_ENV):
        return  # an xdist worker (inherits the directory), or a directory chosen outside
    directory = tempfile.mkdtemp(prefix="channels-reliability-")
    os.environ[rows.ROWS_ENV] = directory
    _OWNED_ROWS_DIR.append(directory)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if hasattr(config, "workerinput") or not _OWNED_ROWS_DIR:
        return
    recorded = rows.read(Path(_OWNED_ROWS_DIR[0]))
    if not recorded:
        return
    terminalreporter.section("reliability: what each case measured")
    terminalreporter.write_line(rows.markdown(recorded))


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and _OWNED_ROWS_DIR:
        directory = _OWNED_ROWS_DIR.pop()
        if os.environ.get(rows.ROWS_ENV) == directory:
            del os.environ[rows.ROWS_ENV]
        shutil.rmtree(directory, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or report.failed:
        item.reliability_outcome = "pass" if report.passed else "FAIL"


@pytest.fixture
def record_row(request, tmp_path_factory) -> Iterator[Callable[..., rows.Row]]:
    """``record_row(case, fault, expected, measured, sent=, delivered=, lost=, duplicated=)``:
    a row of the table; written when the test ends, with its outcome."""
    recorded: list[rows.Row] = []

    def record(*args, **kwargs) -> rows.Row:
        row = rows.Row(*args, **kwargs)
        recorded.append(row)
        return row

    yield record
    directory = os.environ.get(rows.ROWS_ENV)
    target = Path(directory) if directory else tmp_path_factory.getbasetemp() / "reliability"
    for row in recorded:
        row.result = getattr(request.node, "reliability_outcome", "?")
        rows.write(target, row)


@pytest.fixture
def deployment(tmp_path) -> Iterator[Callable[..., Deployment]]:
    """``deployment(shards=1, ...)``: Redis servers and processes of this test, all stopped
    afterwards."""
    made: list[Deployment] = []

    def make(**options) -> Deployment:
        made.append(Deployment(tmp_path / f"d{len(made)}", **options))
        return made[-1]

    yield make
    for each in made:
        each.close()


@pytest.fixture
def clients() -> Iterator[EventLoopThread]:
    """An event loop in a thread for the client side of a test."""
    loop = EventLoopThread()
    yield loop
    loop.close()
