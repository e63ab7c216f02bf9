"""HTTP benchmark: a "hello" Django view through channels-server + Redis + 1 runworker process,
against the same view under gunicorn with 1 sync worker process, in the same run.

    .venv/bin/python -m benchmarks.http_requests [--redis URL] [--duration S] [--concurrency N]
                                                 [--rate R] [--worker-args "--batch-size 8"]

Three measurements per stack, each printed as one JSON line:
* ``max``: ``--concurrency`` clients in a closed loop for ``--duration`` seconds, each request
  on a new connection (both stacks pay the same connection cost): requests/s and latency
  percentiles at saturation.
* ``max_keepalive``: the same, but clients keep their connection when the server allows it
  (what browsers do; gunicorn's sync worker closes every connection, channels-server keeps them).
* ``fixed``: an open-loop load of ``--rate`` requests/s (default 300) for ``--duration`` seconds,
  new connection per request; latency is measured from each request's scheduled start, so a
  stalled server cannot hide its backlog (no coordinated omission).
A line per run gives the ratios the target is stated in (channels rps >= 0.8x gunicorn's,
channels p99 at the fixed rate <= 2x gunicorn's); the ``max`` lines also give the CPU each
server process spent per request (from /proc, children included: gunicorn's worker). With
``--repeat N`` the whole sequence runs N times and a last ``median`` line summarises them: the
machine this was written on is shared, and single runs move by a third.
The client runs on asyncio in this process; servers run as subprocesses on free ports.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    ROOT,
    emit,
    free_port,
    medians,
    percentile,
    ratio,
    redis_url,
    running,
    start,
)

SETTINGS = "tests.core.project.settings"
REQUEST = b"GET /hello/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
KEEPALIVE_REQUEST = b"GET /hello/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def one_request(port: int) -> bool:
    """One GET on a fresh connection; True for a complete 200 response."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    try:
        writer.write(REQUEST)
        response = await reader.read()  # Connection: close, so EOF ends the response
        return response.startswith(b"HTTP/1.1 200") and response.endswith(b"Hello, world")
    except OSError:
        return False
    finally:
        writer.close()


class KeepAliveClient:
    """One persistent HTTP/1.1 connection, reopened whenever the server closes it (gunicorn's
    sync worker closes after every response; channels-server keeps connections open)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self) -> bool:
        try:
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            assert self.reader is not None
            self.writer.write(KEEPALIVE_REQUEST)
            head = await self.reader.readuntil(b"\r\n\r\n")
            headers = head.lower()
            length = int(headers.split(b"content-length:")[1].split(b"\r\n")[0])
            body = await self.reader.readexactly(length)
            if b"connection: close" in headers:
                self.close()
            return head.startswith(b"HTTP/1.1 200") and body == b"Hello, world"
        except (OSError, asyncio.IncompleteReadError, IndexError, ValueError):
            self.close()
            return False

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def closed_loop(port: int, concurrency: int, duration: float,
                      keepalive: bool = False) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration

    async def client() -> None:
        nonlocal errors
        connection = KeepAliveClient(port) if keepalive else None
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            ok = await (connection.request() if connection else one_request(port))
            if ok:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1
        if connection is not None:
            connection.close()

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    return summary(latencies, errors, elapsed)


async def open_loop(port: int, rate: float, duration: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    interval = 1.0 / rate
    total = int(rate * duration)
    began = time.perf_counter()

    async def scheduled(start_at: float) -> None:
        nonlocal errors
        delay = start_at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        ok = await one_request(port)
        if ok:
            latencies.append(time.perf_counter() - start_at)
        else:
            errors += 1

    await asyncio.gather(*(scheduled(began + n * interval) for n in range(total)))
    elapsed = time.perf_counter() - began
    return summary(latencies, errors, elapsed)


def summary(latencies: list[float], errors: int, elapsed: float) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(percentile(ordered, 0.50) * 1000, 2),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 2),
    }


def wait_until_serving(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if asyncio.run(one_request(port)):
            return
        time.sleep(0.1)  # startup has no event we can await from outside the process
    raise RuntimeError(f"nothing answered on port {port} within {timeout}s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (gunicorn's worker), from /proc."""
    total = 0.0
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            total += sum(cpu_seconds(int(child)) for child in children.read().split())
    except (OSError, IndexError, ValueError):
        pass  # not Linux, or the process is gone: the figure is informative only
    return total


def measure(stack: str, port: int, options: argparse.Namespace,
            processes: dict[str, int]) -> dict[str, dict[str, Any]]:
    wait_until_serving(port)
    asyncio.run(closed_loop(port, options.concurrency, 1.0))  # warm-up
    before = {name: cpu_seconds(pid) for name, pid in processes.items()}
    saturated = asyncio.run(closed_loop(port, options.concurrency, options.duration))
    if saturated["requests"]:
        saturated["cpu_ms_per_request"] = {
            name: round((cpu_seconds(pid) - before[name]) * 1000 / saturated["requests"], 3)
            for name, pid in processes.items()
        }
    results = {
        "max": saturated,
        "max_keepalive": asyncio.run(closed_loop(port, options.concurrency, options.duration,
                                                 keepalive=True)),
        "fixed": asyncio.run(open_loop(port, options.rate, options.duration)),
    }
    for mode, result in results.items():
        emit(stack=stack, mode=mode, **({"rate": options.rate} if mode == "fixed" else
                                        {"concurrency": options.concurrency}), **result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http_requests",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis", default=None,
                        help="Redis URL; default: a private redis-server started for the run "
                             "(a shared Redis lets other clients' work stall the measurement)")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the whole sequence this many times and report medians")
    parser.add_argument("--worker-args", default="",
                        help='extra runworker options, e.g. "--batch-size 8"')
    options = parser.parse_args()

    emit(config={"duration": options.duration, "concurrency": options.concurrency,
                 "rate": options.rate, "worker_args": options.worker_args,
                 "repeat": options.repeat,
                 "redis": options.redis or "private", "cpus": os.cpu_count()})
    with redis_url(options.redis) as url:
        options.redis = url
        runs = [run_all(options) for _ in range(max(1, options.repeat))]
        if len(runs) > 1:
            emit(result="median", runs=len(runs), **medians(runs))


def run_all(options: argparse.Namespace) -> dict[str, float]:
    prefix = f"bench-http-{uuid.uuid4().hex[:8]}:"
    env = dict(os.environ, DJANGO_SETTINGS_MODULE=SETTINGS, CORE_TEST_REDIS_URL=options.redis,
               CORE_TEST_PREFIX=prefix, PYTHONPATH=str(ROOT))
    env.pop("CORE_TEST_DEBUG", None)
    bin_dir = Path(sys.executable).parent

    channels_port = free_port()
    try:
        with running([
            start([sys.executable, "-m", "django", "runworker", *options.worker_args.split()],
                  env),
            start([sys.executable, "-m", "channels.server", "tests.core.project.asgi:channel_layer",
                   "-b", "127.0.0.1", "-p", str(channels_port), "-v", "0"], env),
        ]) as (worker, server):
            channels = measure("channels", channels_port, options,
                               {"worker": worker.pid, "server": server.pid})
    finally:
        from channels.layers.redis import RedisChannelLayer

        layer = RedisChannelLayer(hosts=[options.redis], prefix=prefix)
        layer.flush()
        layer.close()

    gunicorn_port = free_port()
    with running([start([str(bin_dir / "gunicorn"), "-w", "1", "-k", "sync",
                         "-b", f"127.0.0.1:{gunicorn_port}", "--log-level", "warning",
                         "tests.core.project.wsgi:application"], env)]) as (gunicorn_process,):
        gunicorn = measure("gunicorn", gunicorn_port, options, {"gunicorn": gunicorn_process.pid})

    summary_line = {
        "channels_rps": channels["max"]["rps"],
        "gunicorn_rps": gunicorn["max"]["rps"],
        "rps_ratio": ratio(channels["max"]["rps"], gunicorn["max"]["rps"]),
        "keepalive_rps_ratio": ratio(channels["max_keepalive"]["rps"],
                                     gunicorn["max_keepalive"]["rps"]),
        "channels_fixed_p99_ms": channels["fixed"]["p99_ms"],
        "gunicorn_fixed_p99_ms": gunicorn["fixed"]["p99_ms"],
        "fixed_p99_ratio": ratio(channels["fixed"]["p99_ms"], gunicorn["fixed"]["p99_ms"]),
        **{f"cpu_ms_{name}": value
           for name, value in channels["max"].get("cpu_ms_per_request", {}).items()},
    }
    emit(result="ratio", **summary_line, target="rps_ratio >= 0.8 and fixed_p99_ratio <= 2.0")
    return summary_line


if __name__ == "__main__":
    main()
