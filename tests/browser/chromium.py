"""Chromium and its WebDriver for the browser tests: found on PATH, installed if missing.

The tests drive Debian's ``chromium`` through Debian's ``chromium-driver`` with Selenium; no
browser is ever downloaded by pip or by Selenium. When they are missing and the tests run as
root on a system with apt-get (CI containers), they are installed once with apt-get, under a
file lock so parallel test processes do not run apt-get twice at once. Anywhere else the
browser tests fail with the command to run: a browser test never skips silently.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: Debian's packages (Ubuntu's ``chromium`` is a snap wrapper; there install them by hand).
PACKAGES = ["chromium", "chromium-driver"]
INSTALL_HINT = ("the browser tests need Chromium and ChromeDriver: install them with "
                "`sudo apt-get install chromium chromium-driver` (Debian) or put `chromium` "
                "and `chromedriver` on PATH")
LOCK_FILE = Path(tempfile.gettempdir()) / "channels-tests-chromium-install.lock"
#: apt-get update + install of the two packages: minutes on a slow mirror, never forever.
INSTALL_TIMEOUT = 900


@dataclass(frozen=True)
class Chromium:
    browser: str
    driver: str


class ChromiumUnavailable(Exception):
    """Why the browser tests cannot run, in words that say what to do."""


def find() -> Chromium | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser and driver:
        return Chromium(browser, driver)
    return None


def find_or_install() -> Chromium:
    """Chromium and ChromeDriver, installing them with apt-get first if allowed and needed."""
    found = find()
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ChromiumUnavailable(f"{INSTALL_HINT} (not installing them myself: "
                                  "that needs root and apt-get)")
    with LOCK_FILE.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be installing right now
        try:
            found = find()
            if found:
                return found
            _apt_get_install()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    found = find()
    if found is None:
        raise ChromiumUnavailable(f"apt-get installed {' '.join(PACKAGES)} but `chromium` and "
                                  f"`chromedriver` are still not on PATH; {INSTALL_HINT}")
    return found


def _apt_get_install() -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", *PACKAGES]):
        try:
            result = subprocess.run(command, env=env, capture_output=True, text=True,
                                    timeout=INSTALL_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise ChromiumUnavailable(f"`{' '.join(command)}` did not finish within "
                                      f"{INSTALL_TIMEOUT} s; {INSTALL_HINT}")
        if result.returncode != 0:
            raise ChromiumUnavailable(
                f"`{' '.join(command)}` failed (exit {result.returncode}); {INSTALL_HINT}:\n"
                f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
