"""Interface server benchmark: channels-server + Redis layer + echo worker vs bare servers.

    .venv/bin/python -m benchmarks.server [--duration 5] [--connections 50] [--redis URL]
                                          [--workers N] [--markdown]

Measures, for our stack (``channels.server.Server`` → Redis layer → an echo worker process) and
for a bare Autobahn echo server / bare Twisted HTTP server on the same reactor in the same run:
WebSocket echo round trips/s with p50/p99 latency over N connections, WebSocket open+close
handshakes/s, and HTTP requests/s (wrk when installed, else a Python keep-alive client).
Prints one JSON line per measurement with the ratio (ours / bare), and with ``--markdown`` the
same as a table. Every process is started here and stopped at the end; Redis is a private
``redis-server`` unless ``--redis`` names one, and the keys use a fresh prefix, flushed after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import time
import uuid

from benchmarks.harness import (
    emit,
    free_port,
    ratio,
    redis_url,
    running,
    start_module,
    wait_listening,
)


def make_layer(redis_url: str, prefix: str):
    from channels.layers.redis import RedisChannelLayer

    return RedisChannelLayer(hosts=[redis_url], prefix=prefix, capacity=1000)


# -- processes under test ---------------------------------------------------------------------

def serve_ours(port: int, redis_url: str, prefix: str) -> None:
    from channels.server import Server

    Server(make_layer(redis_url, prefix), [f"tcp:port={port}:interface=127.0.0.1"],
           verbosity=0).run()


def echo_worker(redis_url: str, prefix: str) -> None:
    """The smallest useful application: accept, echo frames, answer HTTP with 'hello'."""
    layer = make_layer(redis_url, prefix)
    channels = ["http.request", "websocket.connect", "websocket.receive", "websocket.disconnect"]
    response = {"status": 200, "headers": [[b"content-type", b"text/plain"]],
                "content": b"hello"}
    while True:
        for channel, message in layer.receive_batch(channels, 50, block=True):
            reply = message["reply_channel"]
            if channel == "http.request":
                layer.send(reply, response)
            elif channel == "websocket.connect":
                layer.send(reply, {"accept": True})
            elif channel == "websocket.receive":
                if message.get("text") is not None:
                    layer.send(reply, {"text": message["text"]})
                else:
                    layer.send(reply, {"bytes": message["bytes"]})


def serve_bare_websocket(port: int) -> None:
    from twisted.internet import asyncioreactor

    asyncioreactor.install(asyncio.new_event_loop())
    from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
    from twisted.internet import reactor

    class Echo(WebSocketServerProtocol):
        def onMessage(self, payload: bytes, isBinary: bool) -> None:
            self.sendMessage(payload, isBinary)

    factory = WebSocketServerFactory()
    factory.protocol = Echo
    reactor.listenTCP(port, factory, interface="127.0.0.1")
    reactor.run()


def serve_bare_http(port: int) -> None:
    from twisted.internet import asyncioreactor

    asyncioreactor.install(asyncio.new_event_loop())
    from twisted.internet import reactor
    from twisted.web import resource, server

    class Hello(resource.Resource):
        isLeaf = True

        def render_GET(self, request):  # noqa: N802 - Twisted's naming
            request.setHeader(b"content-type", b"text/plain")
            return b"hello"

    reactor.listenTCP(port, server.Site(Hello()), interface="127.0.0.1")
    reactor.run()


def spawn(*args: str) -> subprocess.Popen:
    """This benchmark's own sub-command (below) in a process of its own."""
    return start_module("benchmarks.server", *args)


# -- clients ----------------------------------------------------------------------------------

async def websocket_echo(url: str, connections: int, duration: float) -> dict:
    from websockets.asyncio.client import connect

    latencies: list[float] = []
    sockets = [await connect(url, compression=None) for _ in range(connections)]
    stop_at = time.perf_counter() + duration

    async def loop(ws) -> None:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            await ws.send("ping-payload-0123456789")
            await ws.recv()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(loop(ws) for ws in sockets))
    elapsed = time.perf_counter() - started
    for ws in sockets:
        await ws.close()
    latencies.sort()
    return {
        "rate": len(latencies) / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


async def websocket_open_close(url: str, concurrency: int, duration: float) -> float:
    from websockets.asyncio.client import connect

    count = 0
    stop_at = time.perf_counter() + duration

    async def loop() -> None:
        nonlocal count
        while time.perf_counter() < stop_at:
            ws = await connect(url, compression=None)
            await ws.close()
            count += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return count / (time.perf_counter() - started)


async def http_python(port: int, connections: int, duration: float) -> float:
    request = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
    count = 0
    stop_at = time.perf_counter() + duration

    async def loop() -> None:
        nonlocal count
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < stop_at:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
            await reader.readexactly(length)
            count += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(connections)))
    return count / (time.perf_counter() - started)


def http_rate(port: int, connections: int, duration: float) -> tuple[float, str]:
    if shutil.which("wrk"):
        output = subprocess.run(
            ["wrk", "-t", "2", "-c", str(connections), "-d", f"{max(1, int(duration))}s",
             f"http://127.0.0.1:{port}/"], capture_output=True, text=True, check=True).stdout
        return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)), "wrk"
    return asyncio.run(http_python(port, connections, duration)), "python"


# -- orchestration ----------------------------------------------------------------------------

def run(args: argparse.Namespace) -> None:
    with redis_url(args.redis) as url:
        measure(args, url)


def measure(args: argparse.Namespace, redis: str) -> None:
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    ours, bare_ws, bare_http = free_port(), free_port(), free_port()
    try:
        with running([spawn("serve", str(ours), redis, prefix)]) as processes:
            processes += [spawn("worker", redis, prefix) for _ in range(args.workers)]
            processes += [spawn("bare-ws", str(bare_ws)), spawn("bare-http", str(bare_http))]
            for port in (ours, bare_ws, bare_http):
                wait_listening(port)
            results = {}
            for name, port in (("ours", ours), ("bare", bare_ws)):
                url = f"ws://127.0.0.1:{port}/"
                asyncio.run(websocket_echo(url, 5, 0.5))  # warm-up
                results[name, "echo"] = asyncio.run(
                    websocket_echo(url, args.connections, args.duration))
                results[name, "single"] = asyncio.run(websocket_echo(url, 1, args.duration / 2))
                results[name, "open"] = asyncio.run(websocket_open_close(url, 10, args.duration))
            for name, port in (("ours", ours), ("bare", bare_http)):
                http_rate(port, 10, 1)  # warm-up
                results[name, "http"], tool = http_rate(port, args.connections, args.duration)
    finally:
        make_layer(redis, prefix).flush()

    emit(config={"connections": args.connections, "duration": args.duration,
                 "workers": args.workers, "cpus": os.cpu_count(), "http_client": tool})
    rows = [
        ("WebSocket echo round trips/s", results["ours", "echo"]["rate"],
         results["bare", "echo"]["rate"], "{:,.0f}"),
        ("WebSocket echo p50 latency (ms)", results["ours", "echo"]["p50"],
         results["bare", "echo"]["p50"], "{:.2f}"),
        ("WebSocket echo p99 latency (ms)", results["ours", "echo"]["p99"],
         results["bare", "echo"]["p99"], "{:.2f}"),
        ("WebSocket echo p50, 1 connection (ms)", results["ours", "single"]["p50"],
         results["bare", "single"]["p50"], "{:.2f}"),
        ("WebSocket open+close/s", results["ours", "open"], results["bare", "open"], "{:,.0f}"),
        ("HTTP requests/s", results["ours", "http"], results["bare", "http"], "{:,.0f}"),
    ]
    for label, ours_value, bare_value, _ in rows:
        emit(measurement=label, channels=round(ours_value, 2), bare=round(bare_value, 2),
             ratio=ratio(ours_value, bare_value))
    if args.markdown:
        print(f"\n{args.connections} connections, {args.duration:g} s per measurement, "
              f"{args.workers} echo worker process(es), {os.cpu_count()} CPUs, "
              f"HTTP client: {tool}\n")
        print("| measurement | channels-server + Redis + worker | bare Autobahn / Twisted | "
              "ratio |")
        print("| --- | ---: | ---: | ---: |")
        for label, ours_value, bare_value, fmt in rows:
            print(f"| {label} | {fmt.format(ours_value)} | {fmt.format(bare_value)} | "
                  f"{ours_value / bare_value:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.server",
                                     description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve").add_argument("rest", nargs=3)
    sub.add_parser("worker").add_argument("rest", nargs=2)
    sub.add_parser("bare-ws").add_argument("rest", nargs=1)
    sub.add_parser("bare-http").add_argument("rest", nargs=1)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--redis", default=None,
                        help="Redis URL (default: a private redis-server started for the run)")
    parser.add_argument("--markdown", action="store_true",
                        help="also print the results as a Markdown table")
    args = parser.parse_args()
    if args.command == "serve":
        serve_ours(int(args.rest[0]), args.rest[1], args.rest[2])
    elif args.command == "worker":
        echo_worker(*args.rest)
    elif args.command == "bare-ws":
        serve_bare_websocket(int(args.rest[0]))
    elif args.command == "bare-http":
        serve_bare_http(int(args.rest[0]))
    else:
        run(args)


if __name__ == "__main__":
    main()
