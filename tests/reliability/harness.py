"""A deployment the reliability tests can break: Redis servers of their own, ``channels-server``
and ``manage.py runworker`` processes, all real, all stopped when the test ends.

Redis servers are started by the test on free ports (never the shared one on 6379), so a test
may stop, restart or freeze (SIGSTOP) them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import redis

from channels.layers.redis import RedisChannelLayer
from tests.core.processes import ROOT, Process, channels_server, django_command
from tests.redis_server import RedisServer, redis_binary, start_server

SETTINGS = "tests.reliability.project.settings"
LAYER_PATH = "tests.reliability.project.asgi:channel_layer"
#: Bound on every start-up wait: Django and Twisted start in about a second on an idle machine.
START_TIMEOUT = 20
LISTENING = r"Listening on 127\.0\.0\.1:(\d+)"
WORKER_READY = r"Listening on channels"


class RedisProcess:
    """One redis-server of the test's own, which it may stop, restart on the same port, or
    freeze and thaw."""

    def __init__(self) -> None:
        self.server: RedisServer = start_server(redis_binary()[0])
        self.port = self.server.port
        self.url = self.server.url
        self.frozen = False

    def stop(self) -> None:
        self.thaw()
        self.server.stop()

    def restart(self) -> None:
        """Start again on the same port, empty (no persistence: what was queued is gone)."""
        self.server = start_server(redis_binary()[0], port=self.port)

    def freeze(self) -> None:
        """SIGSTOP: the kernel still accepts connections and buffers writes, nothing answers."""
        assert self.server.process is not None
        self.server.process.send_signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        if self.frozen and self.server.process is not None:
            self.server.process.send_signal(signal.SIGCONT)
        self.frozen = False


class Deployment:
    """Redis shards plus the processes of one test, all sharing one layer configuration."""

    def __init__(self, tmp_path: Path, shards: int = 1, encryption_key: str | None = None,
                 socket_timeout: float = 3, database: bool = False) -> None:
        self.tmp_path = tmp_path
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.redis: list[RedisProcess] = []
        self.processes: list[Process] = []
        self.prefix = f"rel-{uuid.uuid4().hex[:10]}:"
        self.encryption_key = encryption_key
        self.socket_timeout = socket_timeout
        self._layers: list[RedisChannelLayer] = []
        try:
            for _ in range(shards):
                self.redis.append(RedisProcess())
        except BaseException:
            self.close()
            raise
        self.env = dict(os.environ)
        self.env.update({
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT) + os.pathsep + self.env.get("PYTHONPATH", ""),
            "REL_REDIS_HOSTS": ",".join(shard.url for shard in self.redis),
            "REL_PREFIX": self.prefix,
            "REL_SOCKET_TIMEOUT": str(socket_timeout),
            "REL_DB": str(tmp_path / "reliability.sqlite3"),
        })
        if encryption_key:
            self.env["REL_ENCRYPTION_KEY"] = encryption_key
        if database:
            self._migrate()

    def _migrate(self) -> None:
        try:
            subprocess.run([sys.executable, "-m", "django", "migrate", "-v", "0"], env=self.env,
                           cwd=ROOT, check=True, timeout=60)
        except BaseException:
            self.close()
            raise

    # -- processes --------------------------------------------------------------------------

    def start_workers(self, count: int = 1, *args: str) -> list[Process]:
        """``runworker`` processes, started together, returned once each listens."""
        workers = [self._spawn(django_command("runworker", *args)) for _ in range(count)]
        for worker in workers:
            worker.wait_for(WORKER_READY, timeout=START_TIMEOUT)
        return workers

    def start_server(self, *args: str) -> tuple[Process, int]:
        """``channels-server`` on a free port; returns it and the port it listens on."""
        server = self._spawn(channels_server(LAYER_PATH, "-e", "tcp:port=0:interface=127.0.0.1",
                                             *args))
        port = int(server.wait_for(LISTENING, timeout=START_TIMEOUT).group(1))
        return server, port

    def start(self, workers: int = 2, server_args: tuple[str, ...] = (),
              worker_args: tuple[str, ...] = ()) -> tuple[Process, int, list[Process]]:
        """A server and ``workers`` worker processes, started at once; (server, port, workers)."""
        spawned = [self._spawn(django_command("runworker", *worker_args))
                   for _ in range(workers)]
        server, port = self.start_server(*server_args)
        for worker in spawned:
            worker.wait_for(WORKER_READY, timeout=START_TIMEOUT)
        return server, port, spawned

    def _spawn(self, args: list[str]) -> Process:
        process = Process(args, self.env)
        self.processes.append(process)
        return process

    # -- the layer, as the test process sees it ---------------------------------------------

    def layer(self) -> RedisChannelLayer:
        options = {"symmetric_encryption_keys": [self.encryption_key]} \
            if self.encryption_key else {}
        layer = RedisChannelLayer(hosts=[shard.url for shard in self.redis], prefix=self.prefix,
                                  blocking_timeout=0.5,
                                  connection_kwargs={"socket_timeout": self.socket_timeout},
                                  **options)
        self._layers.append(layer)
        return layer

    def open_gate(self, gate: str) -> None:
        """Let a consumer blocked in ``wait_for_gate(gate)`` go on."""
        client = redis.Redis.from_url(self.redis[0].url, socket_timeout=5)
        try:
            client.rpush(gate, 1)
        finally:
            client.close()

    def gate_reached(self, gate: str, timeout: float = 10) -> int:
        """Wait until a consumer waits at ``gate``; the pid of its process."""
        client = redis.Redis.from_url(self.redis[0].url, socket_timeout=timeout + 5)
        try:
            found = client.blpop([f"{gate}:started"], timeout=timeout)
        finally:
            client.close()
        assert found is not None, f"no consumer reached {gate} within {timeout} s"
        return int(found[1])

    def close(self) -> None:
        for layer in self._layers:
            try:
                layer.close()
            except Exception:  # noqa: BLE001 - a Redis the test stopped: nothing to release
                pass
        for process in self.processes:
            process.kill()
        for shard in self.redis:
            shard.stop()


def new_gate() -> str:
    return f"rel-gate-{uuid.uuid4().hex[:10]}"


def lines_matching(process: Process, pattern: str) -> list[str]:
    regex = re.compile(pattern)
    return [line.rstrip("\n") for line in list(process.lines) if regex.search(line)]
