"""A Sentinel-managed Redis of the test's own: a master, one replica and three sentinels, all on
free ports of 127.0.0.1, so a test may kill the master and watch the sentinels promote the
replica."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.redis_server import free_port, redis_binary

SERVICE = "rel-master"
QUORUM = 2
#: How long a master may be silent before a sentinel thinks it down; the failover starts after
#: this plus the agreement of a quorum (each sentinel asks the others once a second).
DOWN_AFTER_MS = 1000
#: Also the pause before a failed failover is tried again (twice this), so kept short.
FAILOVER_TIMEOUT_MS = 3000
START_TIMEOUT = 15


class SentinelCluster:
    """A master, a replica and three sentinels (quorum 2), every process stopped by close()."""

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="channels-rel-sentinel-"))
        self.binary = redis_binary()[0]
        self.processes: dict[str, subprocess.Popen] = {}
        self.master_port = free_port()
        self.replica_port = free_port()
        self.sentinel_ports: list[int] = []
        try:
            self._start_redis("master", self.master_port)
            self._start_redis("replica", self.replica_port,
                              "--replicaof", "127.0.0.1", str(self.master_port))
            for number in range(3):
                self._start_sentinel(number)
        except BaseException:
            self.close()
            raise

    # -- processes --------------------------------------------------------------------------

    def _start_redis(self, name: str, port: int, *extra: str) -> None:
        directory = self.workdir / name
        directory.mkdir()
        self.processes[name] = subprocess.Popen(
            [self.binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(directory), *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait(lambda: _client(port).ping(), f"{name} on {port} did not answer", name)

    def _start_sentinel(self, number: int) -> None:
        port = free_port()
        directory = self.workdir / f"sentinel{number}"
        directory.mkdir()
        config = directory / "sentinel.conf"  # sentinels rewrite their config: one each
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.master_port} {QUORUM}\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {SERVICE} 1\n")
        name = f"sentinel{number}"
        self.processes[name] = subprocess.Popen([self.binary, str(config), "--sentinel"],
                                                stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL)
        self.sentinel_ports.append(port)
        self._wait(lambda: _client(port).sentinel_masters(), f"{name} did not answer", name)

    def _wait(self, probe, message: str, name: str, timeout: float = START_TIMEOUT) -> object:
        deadline = time.monotonic() + timeout
        while True:
            try:
                result = probe()
                if result:
                    return result
            except redis.RedisError:
                pass
            if self.processes[name].poll() is not None:
                raise RuntimeError(f"{message}: exited with {self.processes[name].returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{message} within {timeout} s")
            time.sleep(0.05)  # polling a process that has no event to wait on

    # -- state ------------------------------------------------------------------------------

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", port) for port in self.sentinel_ports]

    def master_addresses(self) -> list[int | None]:
        """The master port each sentinel names now (None: it did not answer)."""
        ports: list[int | None] = []
        for port in self.sentinel_ports:
            try:
                address = _client(port).sentinel_get_master_addr_by_name(SERVICE)
                ports.append(int(address[1]) if address else None)
            except redis.RedisError:
                ports.append(None)
        return ports

    def wait_until_ready(self, timeout: float = 12) -> float:
        """Until the replica is in sync and every sentinel knows the replica and the two other
        sentinels (found through the master's hello channel, every 2 s): before that a
        failover cannot reach its quorum. Returns the seconds it took."""
        started = time.monotonic()

        def ready() -> bool:
            info = _client(self.replica_port).info("replication")
            if info.get("master_link_status") != "up":
                return False
            for port in self.sentinel_ports:
                client = _client(port)
                replicas = client.sentinel_slaves(SERVICE)
                others = client.sentinel_sentinels(SERVICE)
                if len(others) != 2 or not any(
                        not entry["is_sdown"] and int(entry["port"]) == self.replica_port
                        for entry in replicas):
                    return False
            return True

        self._wait(ready, "the sentinels did not see each other and the replica", "master",
                   timeout)
        return time.monotonic() - started

    def kill_master(self) -> None:
        process = self.processes["master"]
        process.kill()  # SIGKILL: no shutdown, nothing flushed to the replica
        process.wait(10)

    def wait_for_promotion(self, timeout: float) -> float | None:
        """Seconds until every sentinel names the replica as the master; None if not in time."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.master_addresses() == [self.replica_port] * len(self.sentinel_ports):
                role = _client(self.replica_port).info("replication").get("role")
                if role == "master":
                    return time.monotonic() - started
            time.sleep(0.05)  # sentinels publish no event a plain client can wait on here
        return None

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        _close_clients([self.master_port, self.replica_port, *self.sentinel_ports])
        shutil.rmtree(self.workdir, ignore_errors=True)


#: One client per port for the whole run (a few polls a second would otherwise leave a
#: connection each), closed with the cluster.
_CLIENTS: dict[int, redis.Redis] = {}


def _client(port: int) -> redis.Redis:
    if port not in _CLIENTS:
        _CLIENTS[port] = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1,
                                     socket_connect_timeout=1, decode_responses=True)
    return _CLIENTS[port]


def _close_clients(ports) -> None:
    for port in ports:
        client = _CLIENTS.pop(port, None)
        if client is not None:
            client.close()
