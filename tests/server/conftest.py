"""Fixtures for the interface server tests: a real ``channels-server`` process on a free port.

The server runs as a subprocess (``python -m channels.server``) because a Twisted reactor runs
once per process; its echo worker thread (``tests.server.echo_app``) lives in the same process
so the in-memory layer works, and reaches Redis through the same layer for the Redis variant.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from tests import process_output

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LISTENING = re.compile(r"Listening on 127\.0\.0\.1:(\d+)")


class ServerProcess:
    """``channels-server tests.server.echo_app:channel_layer`` with its output collected."""

    def __init__(self, args: list[str] | None = None, env: dict[str, str] | None = None,
                 app: str = "tests.server.echo_app:channel_layer") -> None:
        self.args = list(args or [])
        self.env = dict(env or {})
        self.app = app
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._ready: queue.Queue[int] = queue.Queue()

    def start(self, timeout: float = 10) -> ServerProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        command = [sys.executable, "-m", "channels.server", self.app,
                   "-e", "tcp:port=0:interface=127.0.0.1", *self.args]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._collect, args=(self.process.stdout, self.stdout_lines),
                         daemon=True).start()
        threading.Thread(target=self._collect, args=(self.process.stderr, self.stderr_lines),
                         daemon=True).start()
        process_output.register(self, f"channels-server {' '.join(self.args)}", self.output,
                                lambda: self.process.poll() is None)
        try:
            self.port = self._ready.get(timeout=timeout)
        except queue.Empty:
            self.stop()
            raise RuntimeError("server did not start:\n" + self.output()) from None
        return self

    def _collect(self, stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line)
            match = LISTENING.search(line)
            if match:
                self._ready.put(int(match.group(1)))

    def output(self) -> str:
        return "".join(self.stderr_lines) + "".join(self.stdout_lines)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def wait_for_output(self, pattern: str, timeout: float = 5) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.stderr_lines + self.stdout_lines:
                if re.search(pattern, line):
                    return line
            time.sleep(0.02)
        raise AssertionError(f"{pattern!r} not in server output:\n{self.output()}")

    def terminate(self, timeout: float = 15) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        process_output.unregister(self)
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


@pytest.fixture
def start_server() -> Iterator:
    """Start servers with given CLI args/env; all are stopped after the test."""
    started: list[ServerProcess] = []

    def start(args: list[str] | None = None, env: dict[str, str] | None = None,
              **kwargs) -> ServerProcess:
        server = ServerProcess(args, env, **kwargs)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture(params=["memory", "redis"])
def backend_env(request, unique_prefix) -> dict[str, str]:
    """Environment selecting the layer: in-memory, or Redis with a prefix of this test's own."""
    if request.param == "memory":
        return {"ECHO_BACKEND": "memory"}
    redis_url = request.getfixturevalue("redis_url")
    return {"ECHO_BACKEND": "redis", "ECHO_REDIS_URL": redis_url, "ECHO_PREFIX": unique_prefix}


@pytest.fixture(scope="module")
def shared_server() -> Iterator[ServerProcess]:
    """One default server (in-memory layer) for the tests that need nothing special."""
    server = ServerProcess(["--http-timeout", "3"], {"ECHO_BACKEND": "memory"}).start()
    yield server
    server.stop()
