"""The example project in its production shape, as separate processes: ``channels-server``
(stoppable and restartable on the same port) and two ``manage.py runworker`` on the Redis
layer under a key prefix of their own, sharing one SQLite file migrated first."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from channels.layers.redis import RedisChannelLayer
from tests.core.processes import ROOT, Process, channels_server, project_env

MANAGE = str(ROOT / "example_project" / "manage.py")
START_TIMEOUT = 15


def example_env(db_path: Path, redis_url: str, prefix: str) -> dict[str, str]:
    """The environment the example's settings read (see example_project/settings.py)."""
    return project_env(db_path, DJANGO_SETTINGS_MODULE="example_project.settings",
                       EXAMPLE_DB=str(db_path), REDIS_URL=redis_url,
                       CHANNELS_REDIS_PREFIX=prefix, DJANGO_DEBUG="1", EXAMPLE_DEMO_USERS="1")


class ExampleStack:
    def __init__(self, db_path: Path, redis_url: str, prefix: str, workers: int = 2) -> None:
        self.env = example_env(db_path, redis_url, prefix)
        self.redis_url = redis_url
        self.prefix = prefix
        #: Chosen by the system at the first start (no race with other programs for a free
        #: port), then kept: a restart must come back where the pages reconnect to.
        self.port = 0
        self.server: Process | None = None
        self.workers: list[Process] = []
        self.worker_count = workers

    @property
    def base_url(self) -> str:
        assert self.port, "the server has not started yet"
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        # Workers and server need no tables to start, only to answer: migrate meanwhile.
        self.workers = [Process([sys.executable, MANAGE, "runworker"], self.env)
                        for _ in range(self.worker_count)]
        self.start_server()
        self.manage("migrate", "-v", "0")
        for worker in self.workers:
            worker.wait_for(r"Listening on channels .*websocket\.receive", timeout=START_TIMEOUT)

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``manage.py`` once (another process using the ORM); fails on a non-zero exit."""
        result = subprocess.run([sys.executable, MANAGE, *args], env=self.env, cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, (f"manage.py {' '.join(args)} failed:\n"
                                        f"{result.stdout}{result.stderr}")
        return result

    def start_server(self) -> None:
        assert self.server is None, "the server is already running"
        server = Process(channels_server("example_project.asgi:channel_layer",
                                         "-b", "127.0.0.1", "-p", str(self.port)), self.env)
        try:
            listening = server.wait_for(r"Listening on 127\.0\.0\.1:(\d+)", timeout=START_TIMEOUT)
        except AssertionError:
            server.kill()
            raise
        self.port = int(listening.group(1))
        self.server = server

    def stop_server(self) -> None:
        """SIGTERM, as a deploy would: the server closes its sockets (1001) and exits."""
        server, self.server = self.server, None
        if server is None:
            return
        server.signal(signal.SIGTERM)
        try:
            assert server.wait(START_TIMEOUT) == 0, server.output()
        finally:
            server.kill()

    def close(self) -> None:
        """Stop every process and drop the layer's keys; safe after a failed start."""
        for process in [*([self.server] if self.server else []), *self.workers]:
            process.kill()
        self.server = None
        self.workers = []
        layer = RedisChannelLayer(hosts=[self.redis_url], prefix=self.prefix)
        try:
            layer.flush()
        finally:
            layer.close()
