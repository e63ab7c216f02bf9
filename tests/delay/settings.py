"""Settings of the delay server's process tests: the core test project plus ``channels.delay``.

Driven by the same environment variables as ``tests.core.project.settings`` (database file,
Redis URL and prefix), so each test gets its own database and layer prefix. With
``DELAY_TEST_SQLITE_WAL=1`` the SQLite file is used in WAL mode, as ``docs/delay.md``
recommends for a delay server on SQLite (a commit then waits for no fsync).
``DELAY_TEST_SQLITE_TIMEOUT`` shortens how long a connection waits for a locked database
(SQLite's default is 5 s).
"""

import os

from tests.core.project.settings import *  # noqa: F403
from tests.core.project.settings import DATABASES
from tests.core.project.settings import INSTALLED_APPS as _CORE_APPS

INSTALLED_APPS = [*_CORE_APPS, "channels.delay"]

_OPTIONS = DATABASES["default"].setdefault("OPTIONS", {})
if os.environ.get("DELAY_TEST_SQLITE_WAL") == "1":
    _OPTIONS["init_command"] = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
if os.environ.get("DELAY_TEST_SQLITE_TIMEOUT"):
    _OPTIONS["timeout"] = float(os.environ["DELAY_TEST_SQLITE_TIMEOUT"])
