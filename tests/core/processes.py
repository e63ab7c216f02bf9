"""Helpers to run project commands as real subprocesses, always cleaned up."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests import process_output

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = "tests.core.project.settings"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def project_env(db_path: Path, redis_url: str | None = None, prefix: str | None = None,
                **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "CORE_TEST_DB": str(db_path),
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    })
    env.pop("CORE_TEST_REDIS_URL", None)
    if redis_url:
        env["CORE_TEST_REDIS_URL"] = redis_url
        env["CORE_TEST_PREFIX"] = prefix or "core-test:"
    env.update(extra)
    return env


def migrate(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "django", "migrate", "-v", "0"], env=env, cwd=ROOT,
                   check=True, timeout=60)


class Process:
    """A subprocess whose stdout and stderr lines are collected by a reader thread."""

    def __init__(self, args: list[str], env: dict[str, str], stdin: int | None = None):
        """``stdin=subprocess.PIPE`` to talk to the process through ``popen.stdin``."""
        self.args = args
        # Its own process group, so kill() also reaches children (the autoreloader's server).
        self.popen = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, bufsize=1,
                                      start_new_session=True, stdin=stdin)
        self.lines: list[str] = []
        self._new_lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        process_output.register(self, " ".join(str(arg) for arg in args[1:]), self.output,
                                lambda: self.popen.poll() is None)

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line)
            self._new_lines.put(line)
        self._new_lines.put(None)

    def wait_for(self, pattern: str, timeout: float = 15, after: int = 0) -> re.Match[str]:
        """The first output line matching ``pattern`` (already seen or still to come), ignoring
        the first ``after`` lines."""
        regex = re.compile(pattern)
        for line in list(self.lines)[after:]:
            match = regex.search(line)
            if match:
                return match
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                line = self._new_lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                break
            match = regex.search(line)
            if match:
                return match
        raise AssertionError(f"{pattern!r} not seen in the output of {self.args}:\n"
                             + "".join(self.lines))

    def output(self) -> str:
        return "".join(self.lines)

    def signal(self, signo: int = signal.SIGTERM) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signo)

    def wait(self, timeout: float = 15) -> int:
        return self.popen.wait(timeout)

    def kill(self) -> None:
        """Stop it and its children for good (SIGTERM, then SIGKILL); safe to call twice."""
        process_output.unregister(self)
        self._signal_group(signal.SIGTERM)
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass
        # Children (e.g. the autoreloader's server process) may outlive the parent.
        self._signal_group(signal.SIGKILL)
        self.popen.wait(5)
        self._reader.join(5)

    def _signal_group(self, signo: int) -> None:
        try:
            os.killpg(self.popen.pid, signo)
        except ProcessLookupError:
            pass


def django_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "django", *args]


def channels_server(*args: str) -> list[str]:
    return [sys.executable, "-c", "from channels.server.cli import main; main()", *args]
