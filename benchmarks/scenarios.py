"""The load the side-by-side benchmark puts on a stack: WebSocket echo, WebSocket open+close,
group fan-out, and HTTP ``GET /hello``. Each returns a flat dict of figures and the count of
units (messages, connections, deliveries, requests) that the CPU time is divided by.

Every wait is bounded by a timeout, every count is fixed, every address is 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from benchmarks.harness import percentile


@dataclass
class Params:
    conns: int = 50            # ws_echo sockets
    msgs: int = 200            # ws_echo messages per socket
    size: int = 64             # payload bytes
    timeout: float = 10.0      # a reply later than this counts as lost
    connects: int = 500        # ws_connect open+close count
    connect_conc: int = 50     # ws_connect at most this many at once
    receivers: int = 100       # ws_group receiving sockets
    group_msgs: int = 100      # ws_group messages the sender sends
    group_idle: float = 5.0    # ws_group stops waiting after this long with no new delivery
    http_conns: int = 50       # http keep-alive connections
    http_duration: float = 5.0  # http seconds of load


def payload(tag: str, size: int) -> str:
    """``tag`` padded to ``size`` characters: replies are matched to requests by their tag."""
    return tag + "x" * max(0, size - len(tag))


def _ms(seconds: list[float], fraction: float) -> float | None:
    return round(percentile(seconds, fraction) * 1000, 3) if seconds else None


def _connect(url: str):
    from websockets.asyncio.client import connect

    # No compression: neither stack is asked to deflate, so the client must not offer it.
    return connect(url, compression=None, open_timeout=10, close_timeout=5, max_queue=None)


async def probe(ws_base: str, port: int) -> None:
    """One HTTP request and one echoed frame, each must succeed (readiness of a stack)."""
    status, _ = await _http_get(port, "/hello", timeout=5)
    if status != 200:
        raise RuntimeError(f"GET /hello answered {status}")
    async with _connect(f"{ws_base}/ws/echo/") as ws:
        await ws.send("ready?")
        if await asyncio.wait_for(ws.recv(), 5) != "ready?":
            raise RuntimeError("echo answered something else")


async def ws_echo(ws_base: str, p: Params) -> dict[str, Any]:
    """All sockets opened first; then each sends ``msgs`` messages one at a time, waiting for
    each echo (closed loop). The rate counts the send phase only."""
    sockets = await asyncio.gather(*(_connect(f"{ws_base}/ws/echo/") for _ in range(p.conns)))
    latencies: list[float] = []
    lost = mismatched = 0

    async def one(index: int, ws) -> None:
        nonlocal lost, mismatched
        for seq in range(p.msgs):
            sent = payload(f"{index}:{seq}:", p.size)
            started = time.perf_counter()
            await ws.send(sent)
            try:
                reply = await asyncio.wait_for(ws.recv(), p.timeout)
            except TimeoutError:
                # This and every later message of the socket are lost: it is stuck.
                lost += p.msgs - seq
                return
            latencies.append(time.perf_counter() - started)
            if reply != sent:
                mismatched += 1

    started = time.perf_counter()
    try:
        await asyncio.gather(*(one(index, ws) for index, ws in enumerate(sockets)))
        elapsed = time.perf_counter() - started
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    latencies.sort()
    return {"rate": round(len(latencies) / elapsed, 1), "p50_ms": _ms(latencies, 0.5),
            "p99_ms": _ms(latencies, 0.99), "lost": lost, "mismatched": mismatched,
            "units": len(latencies), "window_s": round(elapsed, 3)}


async def ws_connect(ws_base: str, p: Params) -> dict[str, Any]:
    """``connects`` handshakes + closes on ``/ws/echo/``, at most ``connect_conc`` at once."""
    gate = asyncio.Semaphore(p.connect_conc)
    handshakes: list[float] = []
    failures: Counter[str] = Counter()

    async def one() -> None:
        async with gate:
            started = time.perf_counter()
            try:
                ws = await _connect(f"{ws_base}/ws/echo/")
                handshakes.append(time.perf_counter() - started)
                await ws.close()
            except Exception as exc:  # noqa: BLE001 - counted by type, the run goes on
                failures[type(exc).__name__] += 1

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(p.connects)))
    elapsed = time.perf_counter() - started
    handshakes.sort()
    return {"rate": round(len(handshakes) / elapsed, 1), "p50_ms": _ms(handshakes, 0.5),
            "p99_ms": _ms(handshakes, 0.99), "failed": sum(failures.values()),
            "failures": dict(failures), "units": len(handshakes), "window_s": round(elapsed, 3)}


async def ws_group(ws_base: str, p: Params) -> dict[str, Any]:
    """``receivers`` sockets on ``/ws/group/`` and one sender there; the sender sends
    ``group_msgs`` stamped frames as fast as it can and every receiver should get each once.
    The rate is deliveries from the first send to the last delivery."""
    url = f"{ws_base}/ws/group/"
    receivers = await asyncio.gather(*(_connect(url) for _ in range(p.receivers)))
    sender = await _connect(url)
    expected = p.receivers * p.group_msgs
    counts: Counter[tuple[int, int]] = Counter()
    sent_at: dict[int, float] = {}
    fanout: list[float] = []
    last_delivery = 0.0
    progress = asyncio.Event()
    stamp = re.compile(r"^g:(\d+):")

    async def receive(index: int, ws) -> None:
        nonlocal last_delivery
        async for frame in ws:
            match = stamp.match(frame) if isinstance(frame, str) else None
            if match is None:
                continue
            seq = int(match.group(1))
            counts[index, seq] += 1
            now = time.perf_counter()
            last_delivery = now
            if counts[index, seq] == 1 and seq in sent_at:
                fanout.append(now - sent_at[seq])
            progress.set()

    async def drain(ws) -> None:
        async for _ in ws:  # the sender is a member too; its copies are not counted
            pass

    readers = [asyncio.create_task(receive(index, ws)) for index, ws in enumerate(receivers)]
    readers.append(asyncio.create_task(drain(sender)))
    first_send = time.perf_counter()
    try:
        for seq in range(p.group_msgs):
            sent_at[seq] = time.perf_counter()
            await sender.send(payload(f"g:{seq}:", p.size))
        while len(counts) < expected:
            progress.clear()
            try:
                await asyncio.wait_for(progress.wait(), p.group_idle)
            except TimeoutError:
                break  # nothing new for group_idle seconds: the rest is lost
    finally:
        await asyncio.gather(*(ws.close() for ws in [*receivers, sender]),
                             return_exceptions=True)
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    delivered = len(counts)
    window = max(last_delivery - first_send, 1e-9)
    fanout.sort()
    return {"rate": round(delivered / window, 1) if delivered else 0.0,
            "p50_ms": _ms(fanout, 0.5), "p99_ms": _ms(fanout, 0.99),
            "lost": expected - delivered,
            "duplicated": sum(count - 1 for count in counts.values()),
            "units": delivered, "window_s": round(window, 3)}


async def _http_get(port: int, path: str, timeout: float) -> tuple[int, bytes]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        return await asyncio.wait_for(_read_response(reader), timeout)
    finally:
        writer.close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    if length is not None:
        return status, await reader.readexactly(int(length.group(1)))
    if re.search(rb"(?i)\r\ntransfer-encoding:\s*chunked", head) is None:
        raise RuntimeError("response with neither Content-Length nor chunked encoding")
    # Daphne sends a Django response without Content-Length in chunks (RFC 9112 section 7.1).
    body = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        chunk = await reader.readexactly(size + 2)
        if size == 0:
            return status, body  # no trailers are sent by either server
        body += chunk[:-2]


async def http_asyncio(port: int, p: Params) -> dict[str, Any]:
    """``http_conns`` keep-alive connections, each a closed loop of ``GET /hello`` for
    ``http_duration`` seconds (the client when ``wrk`` is not installed)."""
    request = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + p.http_duration

    async def one() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                writer.write(request)
                status, _ = await asyncio.wait_for(_read_response(reader), p.timeout)
                if status != 200:
                    errors += 1
                latencies.append(time.perf_counter() - started)
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(p.http_conns)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"rate": round(len(latencies) / elapsed, 1), "p50_ms": _ms(latencies, 0.5),
            "p99_ms": _ms(latencies, 0.99), "errors": errors, "units": len(latencies),
            "window_s": round(elapsed, 3), "client": "asyncio"}


def _wrk_ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return round(float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 3)


def http_wrk(port: int, p: Params) -> dict[str, Any]:
    duration = max(1, round(p.http_duration))
    output = subprocess.run(
        ["wrk", "-t1", f"-c{p.http_conns}", f"-d{duration}s", "--latency",
         f"http://127.0.0.1:{port}/hello"],
        capture_output=True, text=True, check=True, timeout=duration + 30).stdout
    total = int(re.search(r"(\d+) requests in", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {"rate": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
            "p50_ms": _wrk_ms(re.search(r"50%\s+(\S+)", output).group(1)),
            "p99_ms": _wrk_ms(re.search(r"99%\s+(\S+)", output).group(1)),
            "errors": int(errors.group(1)) if errors else 0, "units": total,
            "window_s": float(duration), "client": "wrk"}


def http(port: int, p: Params) -> dict[str, Any]:
    if shutil.which("wrk"):
        return http_wrk(port, p)
    return asyncio.run(http_asyncio(port, p))


def run_scenario(name: str, ws_base: str, port: int, p: Params) -> dict[str, Any]:
    if name == "http":
        return http(port, p)
    return asyncio.run(WEBSOCKET_SCENARIOS[name](ws_base, p))


WEBSOCKET_SCENARIOS = {"ws_echo": ws_echo, "ws_connect": ws_connect, "ws_group": ws_group}
SCENARIOS = [*WEBSOCKET_SCENARIOS, "http"]
