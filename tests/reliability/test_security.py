"""Security properties a deployment shows from outside: cross-origin sockets refused, a session
cookie good only with the site's own origin, unguessable reply channels, messages encrypted in
Redis, and no secret in any log line."""

from __future__ import annotations

import asyncio
import json
import math
import re
import time

import pytest
import redis
import websockets

from channels.layers.base import _CHANNEL_RE
from tests.reliability import hostile
from tests.reliability.load import Tally, http_request, open_echo_sockets
from tests.server import rawclient

#: In message bodies, headers and passwords of the traffic whose logs are searched.
MARKER = "zq9-SECRET-marker-5150"
ENCRYPTION_KEY = "reliability-encryption-key"
INFO_SOCKETS = 50


async def _whoami(port: int, origin: str | None, cookie: str | None = None,
                  query: str = "") -> str:
    """What /whoami/ answers for a socket opened with this Origin and Cookie: the user name,
    "anonymous", or the HTTP status that refused the handshake."""
    headers = {}
    if origin:
        headers["Origin"] = origin
    if cookie:
        headers["Cookie"] = cookie
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/whoami/{query}",
                                      additional_headers=headers, open_timeout=10,
                                      origin=None) as socket:
            answer = json.loads(await asyncio.wait_for(socket.recv(), 10))
    except websockets.InvalidStatus as exc:
        return f"refused {exc.response.status_code}"
    return answer["user"] or "anonymous"


def _signup(clients, port: int, username: str, password: str) -> str:
    body = f"username={username}&password={password}".encode()
    answer = clients.run(http_request(port, "/signup/", "POST", body, {
        "Content-Type": "application/x-www-form-urlencoded"}), 15)
    assert answer.status == 200, answer
    match = re.search(rb"set-cookie: sessionid=([^;]+)", answer.head, re.IGNORECASE)
    assert match, answer.head
    return match.group(1).decode()


def test_cross_origin_sockets_and_foreign_cookies_do_not_get_in(deployment, clients,
                                                                record_row):
    d = deployment(database=True)
    server, port, _ = d.start(workers=1)
    session_key = _signup(clients, port, "alice", "wonderland")
    own = f"http://127.0.0.1:{port}"
    cookie = f"sessionid={session_key}"
    outcomes = {
        "own origin, alice's cookie": clients.run(_whoami(port, own, cookie), 20),
        "own origin, no cookie": clients.run(_whoami(port, own), 20),
        "own origin, forged cookie": clients.run(_whoami(port, own, "sessionid=" + "x" * 32),
                                                  20),
        "foreign origin, alice's cookie": clients.run(
            _whoami(port, "https://evil.example", cookie), 20),
        "foreign origin, session key in the query": clients.run(
            _whoami(port, "https://evil.example", query=f"?session_key={session_key}"), 20),
        "lookalike origin, alice's cookie": clients.run(
            _whoami(port, "http://127.0.0.1.evil.example", cookie), 20),
        "null origin, alice's cookie": clients.run(_whoami(port, "null", cookie), 20),
        "no Origin header, alice's cookie": clients.run(_whoami(port, None, cookie), 20),
    }
    record_row(
        "3a cross-origin WebSocket, foreign cookie",
        "sockets to an origin-checked, session-authenticated consumer with several "
        "Origin/Cookie combinations",
        "only the site's own origin gets in; the cookie authenticates only there",
        "; ".join(f"{case}: {outcome}" for case, outcome in outcomes.items()))
    assert outcomes == {
        "own origin, alice's cookie": "alice",
        "own origin, no cookie": "anonymous",
        "own origin, forged cookie": "anonymous",
        "foreign origin, alice's cookie": "refused 403",
        "foreign origin, session key in the query": "refused 403",
        "lookalike origin, alice's cookie": "refused 403",
        # Autobahn refuses the opaque origin itself, before the application sees it.
        "null origin, alice's cookie": "refused 400",
        "no Origin header, alice's cookie": "refused 403",
    }


def test_reply_channels_are_valid_and_unguessable(deployment, clients, record_row):
    d = deployment()
    server, port, _ = d.start(workers=1)

    async def names() -> list[str]:
        found = []
        for _ in range(INFO_SOCKETS):
            async with websockets.connect(f"ws://127.0.0.1:{port}/info/",
                                          open_timeout=10) as socket:
                found.append(json.loads(await asyncio.wait_for(socket.recv(), 10))
                             ["reply_channel"])
        return found

    reply_channels = clients.run(names(), 60)
    prefixes = {name.partition("!")[0] for name in reply_channels}
    suffixes = [name.partition("!")[2] for name in reply_channels]
    alphabet = set("".join(suffixes))
    # Bits a guess must match: length times log2 of the alphabet the suffixes are drawn from
    # (estimated by the characters seen, which can only under-count it).
    bits = min(len(suffix) for suffix in suffixes) * math.log2(len(alphabet))
    layer = d.layer()
    refused = []
    for bad in ["websocket.send.x!a b", "websocket.send.x!é", "websocket.send.x!" + "a" * 100,
                "websocket.send.x!a!b"]:
        try:
            layer.send(bad, {"text": "hi"})
        except ValueError:
            refused.append(bad)
    record_row(
        "3b reply channel names", f"{INFO_SOCKETS} sockets told their reply channel",
        "valid names, all different, >= 64 random bits per socket; invalid names refused by "
        "the layer", f"{len(set(reply_channels))} distinct, 1 process prefix, suffixes of "
        f"{len(suffixes[0])} chars over {len(alphabet)} symbols = {bits:.0f} bits; "
        f"{len(refused)}/4 invalid names refused")
    assert len(set(reply_channels)) == INFO_SOCKETS
    assert prefixes == {next(iter(prefixes))} and next(iter(prefixes)).startswith(
        "websocket.send.")
    assert all(_CHANNEL_RE.match(name) for name in reply_channels)
    assert bits >= 64
    assert len(refused) == 4


@pytest.mark.parametrize("encrypted", [True, False], ids=["encrypted", "plain"])
def test_messages_at_rest_in_redis(deployment, clients, record_row, encrypted):
    d = deployment(encryption_key=ENCRYPTION_KEY if encrypted else None)
    server, port, _ = d.start(workers=0, server_args=("--http-timeout", "30"))
    # No worker yet: the request waits in Redis, where the test reads it raw.
    request = clients.submit(http_request(port, "/body-length/", "POST", MARKER.encode(),
                                          {"X-Token": MARKER}, timeout=30))
    raw_client = redis.Redis.from_url(d.redis[0].url, socket_timeout=5)
    key = d.prefix + "http.request"
    deadline, stored = time.monotonic() + 10, []
    while not stored and time.monotonic() < deadline:
        stored = raw_client.lrange(key, 0, -1)  # the request reaches Redis within a moment
        if not stored:
            time.sleep(0.02)
    raw_client.close()
    readable = [entry for entry in stored if MARKER.encode() in entry]
    d.start_workers(1)
    answer = request.result(30)
    record_row(
        f"3c messages at rest ({'encrypted' if encrypted else 'plain'})",
        "http.request with a marker in body and header, read raw from Redis",
        "marker not in the stored bytes with symmetric_encryption_keys; the worker still "
        "reads it" if encrypted else "control: marker readable without encryption",
        f"{len(stored)} entry, marker readable: {bool(readable)}; answer "
        f"{answer.status} {answer.body!r}")
    assert len(stored) == 1
    assert bool(readable) is not encrypted
    assert (answer.status, answer.body) == (200, str(len(MARKER)).encode())


def test_no_secret_reaches_the_logs(deployment, clients, record_row):
    d = deployment(database=True)
    server, port, workers = d.start(workers=1)
    session_key = _signup(clients, port, "marker-user", MARKER)
    cookie = f"sessionid={session_key}"
    own = f"http://127.0.0.1:{port}"

    async def traffic() -> None:
        headers = {"Cookie": cookie, "X-Token": MARKER, "Authorization": f"Bearer {MARKER}"}
        for path, method, body in [("/hello/", "GET", b""), ("/whoami/", "GET", b""),
                                   ("/body-length/", "POST", MARKER.encode() * 3),
                                   ("/nowhere/", "GET", b"")]:
            assert (await http_request(port, path, method, body, headers)).status in (200, 404)
        assert await _whoami(port, own, cookie) == "marker-user"
        assert await _whoami(port, own, query=f"?session_key={session_key}") == "marker-user"
        assert await _whoami(port, "https://evil.example", cookie) == "refused 403"
        tally = Tally()
        [socket] = await open_echo_sockets(f"ws://127.0.0.1:{port}/echo/", 1, tally, MARKER)
        await socket.send_numbered(5, 0, asyncio.Event())
        assert await tally.settled(10)
        await socket.close()
        # Refused input carrying the marker: a message over --max-frame-size.
        async with websockets.connect(f"ws://127.0.0.1:{port}/echo/",
                                      max_size=None) as refused:
            with pytest.raises(websockets.ConnectionClosed):
                await refused.send(MARKER * 60_000)
                await asyncio.wait_for(refused.recv(), 10)

    clients.run(traffic(), 60)
    # And a text frame that is not UTF-8.
    assert hostile.websocket_close_code(port, rawclient.frame(MARKER.encode() + b"\xff")) == 1007
    for process in [server, *workers]:
        process.signal()
        process.wait(15)
    output = {"server": server.output(), "worker": workers[0].output()}
    secrets = {"marker": MARKER, "session key": session_key}
    found = {f"{what} in {name} log": [line for line in text.splitlines() if secret in line]
             for name, text in output.items() for what, secret in secrets.items()}
    found = {where: lines for where, lines in found.items() if lines}
    record_row(
        "3d secrets in logs", "HTTP and WebSocket traffic with a marker in bodies, headers, "
        "a password, frames (accepted and refused), plus the session cookie and "
        "?session_key=, at the default log level",
        "neither the marker nor the session key in any line of the server's or worker's "
        "output", f"{sum(len(text.splitlines()) for text in output.values())} lines read; "
        + (f"found: {found}" if found else "none found"))
    assert found == {}
