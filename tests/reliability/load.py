"""Client load for the reliability tests: WebSocket echo sockets that count every message, and
an HTTP loop that records every answer, on one event loop in a thread of the test process.

Every message a socket sends carries a unique id and the echo consumer sends it back unchanged,
so after the run each id is delivered once, several times (duplicated) or never (lost).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import websockets

#: Bound on one client handshake or HTTP exchange.
CLIENT_TIMEOUT = 10.0


class EventLoopThread:
    """An asyncio loop in a daemon thread; tests hand it coroutines and wait for their results."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                        name="reliability-load")
        self._thread.start()

    def submit(self, coroutine: Coroutine) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def run(self, coroutine: Coroutine, timeout: float) -> Any:
        return self.submit(coroutine).result(timeout)

    def close(self) -> None:
        async def cancel_all() -> None:
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self.run(cancel_all(), 10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


@dataclass
class Tally:
    """What echo sockets sent and got back."""

    sent: dict[str, float] = field(default_factory=dict)  # id -> time sent
    received: Counter = field(default_factory=Counter)
    closes: list[tuple[int | None, float]] = field(default_factory=list)  # (code, time)
    errors: list[str] = field(default_factory=list)
    #: Echoes that came back on a socket other than the one that sent them.
    misrouted: list[str] = field(default_factory=list)
    #: Seconds from send to first echo, one per id delivered.
    round_trips: list[float] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def delivered(self) -> int:
        return sum(1 for message_id in self.sent if self.received[message_id])

    @property
    def lost(self) -> int:
        return len(self.sent) - self.delivered

    @property
    def duplicated(self) -> int:
        return sum(count - 1 for count in self.received.values() if count > 1)

    def lost_ids(self) -> list[str]:
        return [message_id for message_id in self.sent if not self.received[message_id]]

    async def settled(self, timeout: float) -> bool:
        """Wait until every id sent came back (True), or ``timeout`` passed (False)."""
        deadline = time.monotonic() + timeout
        while self.lost:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except TimeoutError:
                return False
        return True


class EchoSocket:
    """One WebSocket on the echo path, sending numbered messages until told to stop."""

    def __init__(self, url: str, name: str, tally: Tally, origin: str | None = None) -> None:
        self.url = url
        self.name = name
        self.tally = tally
        self.origin = origin
        self.connection: Any = None
        self._reader: asyncio.Task | None = None
        self.closed = asyncio.Event()

    async def open(self) -> None:
        headers = {"Origin": self.origin} if self.origin else {}
        self.connection = await websockets.connect(self.url, open_timeout=CLIENT_TIMEOUT,
                                                   additional_headers=headers,
                                                   ping_interval=None, max_queue=None)
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            async for text in self.connection:
                if isinstance(text, str) and text.rpartition(":")[0] != self.name:
                    self.tally.misrouted.append(f"{text} on {self.name}")
                sent_at = self.tally.sent.get(text)
                if sent_at is not None and not self.tally.received[text]:
                    self.tally.round_trips.append(time.monotonic() - sent_at)
                self.tally.received[text] += 1
                self.tally.changed.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            rcvd = self.connection.protocol.close_rcvd
            self.tally.closes.append((rcvd.code if rcvd else None, time.monotonic()))
            self.closed.set()
            self.tally.changed.set()

    async def send_numbered(self, count: int | None, interval: float,
                            stop: asyncio.Event, delay: float = 0) -> None:
        """Send ``name:N`` every ``interval`` seconds until ``stop`` (or ``count`` sent),
        the first after ``delay`` (to spread many sockets' sends over the interval)."""
        if delay:
            try:
                await asyncio.wait_for(stop.wait(), delay)
                return
            except TimeoutError:
                pass
        number = 0
        while not stop.is_set() and (count is None or number < count):
            message_id = f"{self.name}:{number}"
            # Noted before the send: under load the echo can arrive while send() drains.
            self.tally.sent[message_id] = time.monotonic()
            try:
                await self.connection.send(message_id)
            except websockets.ConnectionClosed as exc:
                del self.tally.sent[message_id]
                self.tally.errors.append(f"{self.name}: closed while sending: {exc}")
                return
            number += 1
            # Pacing of the load, not synchronisation: the test waits on the tally.
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                pass

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()
        if self._reader is not None:
            await asyncio.wait([self._reader], timeout=CLIENT_TIMEOUT)


async def open_echo_sockets(url: str, count: int, tally: Tally, prefix: str = "ws",
                            origin: str | None = None, concurrency: int = 50) -> list[EchoSocket]:
    """``count`` echo sockets, opened ``concurrency`` at a time."""
    sockets = [EchoSocket(url, f"{prefix}{number}", tally, origin) for number in range(count)]
    limit = asyncio.Semaphore(concurrency)

    async def open_one(socket: EchoSocket) -> None:
        async with limit:
            await socket.open()

    await asyncio.gather(*(open_one(socket) for socket in sockets))
    return sockets


# -- HTTP -------------------------------------------------------------------------------------

@dataclass
class HttpResult:
    started: float
    ended: float
    status: int | None  # None: no answer (connection refused or reset)
    body: bytes = b""
    error: str = ""
    head: bytes = b""  # status line and headers


async def http_request(port: int, path: str, method: str = "GET", body: bytes = b"",
                       headers: dict[str, str] | None = None,
                       timeout: float = CLIENT_TIMEOUT) -> HttpResult:
    """One request on a fresh connection (``Connection: close``), read to the end."""
    started = time.monotonic()
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close",
             f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port),
                                                timeout)
        writer.write(request)
        response = await asyncio.wait_for(reader.read(), timeout)
    except (OSError, TimeoutError) as exc:
        return HttpResult(started, time.monotonic(), None, error=repr(exc))
    finally:
        if writer is not None:
            writer.close()
    ended = time.monotonic()
    head, _, content = response.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return HttpResult(started, ended, None, error=f"no status line: {response[:80]!r}")
    return HttpResult(started, ended, status, content, head=head)


async def http_loop(port: int, path: str, results: list[HttpResult], stop: asyncio.Event,
                    interval: float) -> None:
    """GET ``path`` again and again until ``stop``, one at a time, ``interval`` apart."""
    while not stop.is_set():
        results.append(await http_request(port, path))
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            pass


class MixedLoad:
    """Echo sockets sending steadily plus HTTP loops, started and stopped by a test."""

    def __init__(self, clients: EventLoopThread, port: int, sockets: int = 20,
                 interval: float = 0.05, http_loops: int = 2, http_path: str = "/hello/") -> None:
        self.clients = clients
        self.port = port
        self.socket_count = sockets
        self.interval = interval
        self.http_loops = http_loops
        self.http_path = http_path
        self.tally = Tally()
        self.http_results: list[HttpResult] = []
        self.sockets: list[EchoSocket] = []
        self._stop: asyncio.Event | None = None
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        async def start() -> None:
            self.sockets = await open_echo_sockets(f"ws://127.0.0.1:{self.port}/echo/",
                                                   self.socket_count, self.tally)
            self._stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(socket.send_numbered(None, self.interval,
                                                                 self._stop))
                           for socket in self.sockets]
            self._tasks += [loop.create_task(http_loop(self.port, self.http_path,
                                                       self.http_results, self._stop,
                                                       self.interval))
                            for _ in range(self.http_loops)]

        self.clients.run(start(), 30)

    def stop(self, drain_timeout: float = 10) -> bool:
        """Stop sending, wait for the echoes still due (bounded), close; True if all came."""
        async def stop() -> bool:
            assert self._stop is not None
            self._stop.set()
            await asyncio.gather(*self._tasks)
            settled = await self.tally.settled(drain_timeout)
            await asyncio.gather(*(socket.close() for socket in self.sockets))
            return settled

        return self.clients.run(stop(), drain_timeout + 2 * CLIENT_TIMEOUT + 5)

    def open_sockets(self) -> int:
        return sum(1 for socket in self.sockets if not socket.closed.is_set())


async def first_echo(port: int, timeout: float, path: str = "/echo/") -> float | None:
    """Seconds until a NEW socket connects and gets its echo, trying again as needed; None if
    that never happened within ``timeout``."""
    started = time.monotonic()
    attempt = 0
    while time.monotonic() - started < timeout:
        tally = Tally()
        attempt += 1
        try:
            [socket] = await asyncio.wait_for(
                open_echo_sockets(f"ws://127.0.0.1:{port}{path}", 1, tally, f"probe{attempt}-"),
                max(0.1, timeout - (time.monotonic() - started)))
            await socket.send_numbered(1, 0, asyncio.Event())
            echoed = await tally.settled(max(0.1, timeout - (time.monotonic() - started)))
            await socket.close()
            if echoed:
                return time.monotonic() - started
        except (OSError, TimeoutError, websockets.InvalidStatus, websockets.ConnectionClosed):
            await asyncio.sleep(0.05)  # refused while the layer is away: try again shortly
    return None
