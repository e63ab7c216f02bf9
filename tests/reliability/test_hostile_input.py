"""Hostile input against a live server (channels-server, a worker, Redis): each bad input gets
its defined answer, and a legitimate client opened at the start keeps being served throughout
(probed after every batch)."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

import pytest

from tests.reliability import hostile
from tests.reliability.harness import Deployment
from tests.reliability.load import EventLoopThread, Tally, http_request, open_echo_sockets
from tests.server import rawclient

REQUEST_TIMEOUT = 2
MAX_HEADER_SIZE = 4096
MAX_FRAME_SIZE = 65536
#: The fixed seed of the generated inputs (printed with any failure, so it can be replayed).
SEED = 20261203
FUZZ_EXAMPLES = 200
SLOW_CLIENTS = 100


class Live:
    """The server under attack, and a legitimate client that stays connected."""

    def __init__(self, tmp_path) -> None:
        self.deployment = Deployment(tmp_path)
        self.server, self.port, self.workers = self.deployment.start(
            workers=1, server_args=("--request-timeout", str(REQUEST_TIMEOUT),
                                    "--max-header-size", str(MAX_HEADER_SIZE),
                                    "--max-frame-size", str(MAX_FRAME_SIZE)))
        self.clients = EventLoopThread()
        self.tally = Tally()
        [self.socket] = self.clients.run(
            open_echo_sockets(f"ws://127.0.0.1:{self.port}/echo/", 1, self.tally, "legit"), 20)
        self.probes = 0

    def probe(self) -> None:
        """The legitimate client is still served: an HTTP request and an echo on its socket."""
        assert self.server.popen.poll() is None, "the server died"
        answer = self.clients.run(http_request(self.port, "/hello/"), 15)
        assert (answer.status, answer.body) == (200, b"hello"), answer

        async def echo() -> bool:
            await self.socket.connection.send(f"legit:probe{self.probes}")
            self.tally.sent[f"legit:probe{self.probes}"] = time.monotonic()
            return await self.tally.settled(5)

        assert self.clients.run(echo(), 10), "the legitimate socket got no echo"
        self.probes += 1

    def close(self) -> None:
        try:
            self.clients.run(self.socket.close(), 15)
        finally:
            self.clients.close()
            self.deployment.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = Live(tmp_path_factory.mktemp("hostile"))
    yield server
    server.close()


def _row(record_row, live, case: str, fault: str, expected: str, measured: str) -> None:
    record_row(f"{case[:2]} hostile: {case[3:]}", fault, expected + "; legit client served after",
               measured, sent=len(live.tally.sent), delivered=live.tally.delivered,
               lost=live.tally.lost, duplicated=live.tally.duplicated)


def _answers(port: int, inputs: list[bytes]) -> list[int | None]:
    return [hostile.exchange(port, data) for data in inputs]


def test_malformed_request_lines(live, record_row):
    answers = _answers(live.port, hostile.MALFORMED_REQUEST_LINES)
    live.probe()
    _row(record_row, live, "2a malformed request lines",
         f"{len(answers)} request lines (garbage, missing parts, NUL, bare LF)",
         "400 (a head ended by bare LFs waits for CRLF: 408)", str(dict(Counter(answers))))
    # Bare LF line ends are not HTTP/1.1 (RFC 9112 §2.2 lets a server refuse them): Twisted
    # waits for a CRLF that never comes, so that one ends with the request timeout.
    expected = [408 if b"\r\n" not in data else 400 for data in hostile.MALFORMED_REQUEST_LINES]
    assert answers == expected


def test_header_floods_and_huge_headers(live, record_row):
    inputs = [hostile.header_flood(150), hostile.header_flood(5000),
              hostile.huge_header(MAX_HEADER_SIZE + 1), hostile.huge_header(1_000_000)]
    answers = _answers(live.port, inputs)
    live.probe()
    _row(record_row, live, "2b header floods, huge headers",
         "150 and 5,000 headers; a 4 KiB + 1 and a 1 MB header", "431 each",
         str(dict(Counter(answers))))
    assert answers == [431] * len(inputs)


def test_bad_chunked_encoding(live, record_row):
    answers = _answers(live.port, hostile.BAD_CHUNKED)
    live.probe()
    _row(record_row, live, "2c bad chunked encoding",
         "non-hex, negative, short and oversized chunk sizes; chunked + Content-Length",
         "400 (a 20-digit chunk size waits for its data: 408)", str(dict(Counter(answers))))
    assert answers == [400, 400, 400, 408, 400]


def test_invalid_utf8_in_path_and_headers(live, record_row):
    answers = _answers(live.port, hostile.INVALID_UTF8)
    live.probe()
    _row(record_row, live, "2d invalid UTF-8 in path and headers",
         "raw and %-encoded invalid UTF-8 in the path; bytes >127 in a header value, a "
         "header name and the query", "path: 400; header name: 400; header value and query "
         "passed on as bytes: 200", str(answers))
    assert answers == [400, 400, 400, 200, 400, 200]


def test_websocket_protocol_abuse_closes_only_that_socket(live, record_row):
    frame = rawclient.frame
    cases = {
        "unmasked client frame": (hostile.unmasked_frame(b"hello"), 1002),
        "ping with 126-byte payload": (frame(b"p" * 126, opcode=0x9), 1002),
        "fragmented ping": (frame(b"p", opcode=0x9, fin=False), 1002),
        "frame over --max-frame-size": (frame(b"x" * (MAX_FRAME_SIZE + 1)), 1009),
        "fragments adding up over it": (b"".join(
            frame(b"x" * 30000, opcode=0x1 if n == 0 else 0x0, fin=n == 2)
            for n in range(3)), 1009),
        "continuation without a start": (frame(b"x", opcode=0x0), 1002),
        "reserved opcode": (frame(b"x", opcode=0x3), 1002),
        "RSV bits set": (bytes([0xF1]) + frame(b"x")[1:], 1002),
        "invalid UTF-8 text": (frame(b"\xff\xfe"), 1007),
        "random bytes": (random.Random(SEED).randbytes(300), 1002),
    }
    codes = {name: hostile.websocket_close_code(live.port, data)
             for name, (data, _) in cases.items()}
    # A message in many fragments within the limit is one message, echoed whole.
    conn, head = rawclient.open_websocket(live.port, "/echo/")
    try:
        conn.send(frame(b"frag", fin=False) + frame(b"men", opcode=0x0, fin=False)
                  + frame(b"ted", opcode=0x0))
        fragmented_echo = conn.read_frame()
    finally:
        conn.close()
    live.probe()
    _row(record_row, live, "2e WebSocket frames",
         f"{len(cases)} protocol violations, each on its own socket; a 3-fragment message",
         "1002 protocol error, 1009 too big, 1007 bad UTF-8; fragments echoed as one",
         f"{dict(Counter(codes.values()))}; fragmented message echoed: "
         f"{fragmented_echo == (0x1, b'fragmented')}")
    assert codes == {name: code for name, (_, code) in cases.items()}
    assert fragmented_echo == (0x1, b"fragmented")


def test_random_requests_from_a_fixed_seed(live, record_row):
    rng = random.Random(SEED)
    inputs = [hostile.random_request(rng) for _ in range(FUZZ_EXAMPLES)]
    started = time.monotonic()
    answers = []
    for index, data in enumerate(inputs):
        answer = hostile.exchange(live.port, data)
        answers.append(answer)
        # Every input is answered (or the connection closed) and none breaks the server.
        assert answer is None or 100 < answer < 500, (SEED, index, data[:200], answer)
        if index % 50 == 49:
            live.probe()
    elapsed = time.monotonic() - started
    _row(record_row, live, f"2f random requests (seed {SEED})",
         f"{FUZZ_EXAMPLES} mutated requests: flipped bytes, noise, repeats, truncation",
         "an answer below 500 or a close for each", f"{dict(Counter(answers))} in {elapsed:.1f} s")


def test_slowloris_clients_time_out_and_block_nobody(live, record_row):
    async def slow_client() -> tuple[int | None, float]:
        started = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
        writer.write(b"GET /hello/ HTTP/1.1\r\nHost: x\r\n")
        response = b""
        try:
            # A header byte now and then, for ever: only the server's deadline ends this.
            while not reader.at_eof() and time.monotonic() - started < 4 * REQUEST_TIMEOUT:
                try:
                    response += await asyncio.wait_for(reader.read(65536), 0.3)
                except TimeoutError:
                    writer.write(b"X")
                    await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
        status = int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/") else None
        return status, time.monotonic() - started

    async def attack() -> tuple[list, list[float]]:
        slow = [asyncio.create_task(slow_client()) for _ in range(SLOW_CLIENTS)]
        await asyncio.sleep(0.5)  # the slow clients are all connected and trickling
        probe_times = []
        for _ in range(5):
            answer = await http_request(live.port, "/hello/")
            assert answer.status == 200
            probe_times.append(answer.ended - answer.started)
        return await asyncio.gather(*slow), probe_times

    results, probe_times = live.clients.run(attack(), 8 * REQUEST_TIMEOUT + 10)
    live.probe()
    statuses = Counter(status for status, _ in results)
    slowest = max(seconds for _, seconds in results)
    _row(record_row, live, "2g slowloris",
         f"{SLOW_CLIENTS} clients sending a header byte every 0.3 s, never finishing",
         f"408 each within --request-timeout ({REQUEST_TIMEOUT} s) + 10 %; other requests "
         "answered meanwhile",
         f"{dict(statuses)}, slowest closed after {slowest:.2f} s; 5 requests meanwhile "
         f"answered in <= {max(probe_times) * 1000:.0f} ms")
    assert statuses == {408: SLOW_CLIENTS}
    assert slowest < REQUEST_TIMEOUT * 1.1 + 1.0
    assert max(probe_times) < 1.0


MAX_CONNECTIONS = 20


async def _close_all(sockets) -> None:
    await asyncio.gather(*(socket.close() for socket in sockets))


def test_connections_over_max_connections_are_refused_at_once(deployment, clients, record_row):
    d = deployment()
    server, port, _ = d.start(workers=1, server_args=("--max-connections",
                                                      str(MAX_CONNECTIONS)))
    tally = Tally()
    sockets = clients.run(open_echo_sockets(f"ws://127.0.0.1:{port}/echo/", MAX_CONNECTIONS,
                                            tally, "held"), 30)
    over_http = clients.run(http_request(port, "/hello/"), 15)

    async def over_websocket() -> str:
        try:
            extra = await open_echo_sockets(f"ws://127.0.0.1:{port}/echo/", 1, Tally(), "x")
        except Exception as exc:  # noqa: BLE001 - the refusal is what is measured
            return repr(exc)
        await extra[0].close()
        return "accepted"

    over_ws = clients.run(over_websocket(), 15)

    async def held_still_echo() -> bool:
        for socket in sockets:
            await socket.send_numbered(1, 0, asyncio.Event())
        return await tally.settled(10)

    held_echo = clients.run(held_still_echo(), 20)
    clients.run(_close_all(sockets[:5]), 20)
    # Closing is asynchronous on the server's side: a new connection is let in once it has
    # seen the closes (bounded).
    deadline, after_close = time.monotonic() + 5, None
    while time.monotonic() < deadline:
        after_close = clients.run(http_request(port, "/hello/"), 15)
        if after_close.status == 200:
            break
    clients.run(_close_all(sockets[5:]), 20)
    record_row(
        "2h --max-connections", f"--max-connections {MAX_CONNECTIONS}; {MAX_CONNECTIONS} "
        "sockets open, then one more HTTP request and one more WebSocket",
        "the extra connections refused at once (503); the open ones keep working; room again "
        "once some close",
        f"HTTP {over_http.status} in {(over_http.ended - over_http.started) * 1000:.0f} ms; "
        f"WebSocket {'503' if 'status_code=503' in over_ws else over_ws}; held sockets echo: "
        f"{held_echo}; after 5 closed: "
        f"{after_close.status if after_close else None}",
        sent=len(tally.sent), delivered=tally.delivered, lost=tally.lost,
        duplicated=tally.duplicated)
    assert over_http.status == 503 and b"Too many connections" in over_http.body
    assert over_http.ended - over_http.started < 0.5
    assert "503" in over_ws
    assert held_echo and tally.lost == 0
    assert after_close is not None and after_close.status == 200
    assert server.popen.poll() is None
