"""Fixtures of the browser tests: Chromium, the example project running live, and one
logged-in browser per demo user.

Chromium is looked for (and installed if missing, see chromium.py) once the tests are
collected, only when browser tests were selected: an install takes longer than any test may,
and pytest-timeout does not bound collection.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.browser import chromium
from tests.browser.browser import Browser, start_driver
from tests.browser.stack import ExampleStack
from tests.core.processes import ROOT

HERE = Path(__file__).resolve().parent
#: Screenshots of every step, for people to look at (ignored by git).
SHOTS = ROOT / "test-output" / "browser"
DEMO_PASSWORD = "channels-demo"  # example_project/settings.py: DEMO_PASSWORD
USERS = ["alice", "bob", "admin"]

_chromium: chromium.Chromium | None = None
_chromium_problem: str | None = None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    global _chromium, _chromium_problem
    if _chromium or _chromium_problem:
        return
    if not any(Path(str(item.path)).is_relative_to(HERE) for item in items):
        return
    try:
        _chromium = chromium.find_or_install()
    except chromium.ChromiumUnavailable as exc:
        _chromium_problem = str(exc)


@pytest.fixture(scope="session")
def chromium_install() -> chromium.Chromium:
    if _chromium is None:
        # Fail, not skip: a suite that quietly stops testing the browser is worse than none.
        pytest.fail(_chromium_problem or chromium.INSTALL_HINT, pytrace=False)
    return _chromium


@dataclass
class Live:
    example: ExampleStack
    browsers: dict[str, Browser]


@pytest.fixture(scope="module")
def live(chromium_install: chromium.Chromium, redis_url: str,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The example project on Redis under this module's own prefix, on a fresh SQLite file,
    and alice, bob and admin each in a browser of their own, logged in through the login page.

    Browsers and processes start side by side, then the three log in at once: each step takes
    seconds, and all of it counts against the first test's time limit.
    """
    stack = ExampleStack(tmp_path_factory.mktemp("example") / "db.sqlite3", redis_url,
                         prefix=f"browser-{uuid.uuid4().hex[:12]}:")
    pool = ThreadPoolExecutor(len(USERS) + 1)
    drivers = [pool.submit(start_driver, chromium_install) for _ in USERS]
    try:
        pool.submit(stack.start).result()
        browsers = [Browser(driver.result(), stack.base_url, SHOTS, name)
                    for driver, name in zip(drivers, USERS, strict=True)]
        for login in [pool.submit(browser.log_in, browser.name, DEMO_PASSWORD)
                      for browser in browsers]:
            login.result()
        yield Live(stack, {browser.name: browser for browser in browsers})
    finally:
        pool.shutdown(wait=True)  # every driver that was starting has started: quit them all
        for driver in drivers:
            if driver.exception() is None:
                _quit(driver.result())
        stack.close()


@pytest.fixture
def example(live: Live) -> ExampleStack:
    return live.example


@pytest.fixture
def browsers(live: Live) -> dict[str, Browser]:
    return live.browsers


def _quit(driver) -> None:
    """Quit the browser; if the driver no longer answers, kill it (Chromium goes with it)."""
    try:
        driver.quit()
    except Exception:
        process = getattr(driver.service, "process", None)
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(5)
