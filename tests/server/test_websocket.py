"""WebSocket through the server: handshake answers, frames both ways, order, close codes,
sub-protocols, keepalive, timeouts, compression and back-pressure."""

from __future__ import annotations

import json
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from channels.layers.redis import RedisChannelLayer
from tests.server import rawclient
from tests.server.events import wait_for_event


def test_text_and_binary_frames_are_echoed(backend_env, start_server):
    server = start_server([], backend_env)
    with connect(server.ws_url + "/ws/echo", open_timeout=5) as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        ws.send(b"\x00\x01\xff")
        assert ws.recv(timeout=5) == b"\x00\x01\xff"
        ws.send("ünïcode ✓")
        assert ws.recv(timeout=5) == "ünïcode ✓"


def test_connect_message_has_every_key_of_the_spec(shared_server):
    with connect(shared_server.ws_url + "/ws/info?x=1", open_timeout=5) as ws:
        info = json.loads(ws.recv(timeout=5))
    assert info["path"] == "/ws/info"
    assert info["query_string"] == "x=1"
    assert info["scheme"] == "ws"
    assert info["root_path"] == ""
    assert info["order"] == 0
    assert info["client"][0] == "127.0.0.1"
    assert info["server"] == ["127.0.0.1", shared_server.port]
    assert info["reply_channel"].startswith("websocket.send.")


@pytest.mark.parametrize("path", ["/ws/reject", "/ws/close"])
def test_rejected_handshake_is_a_403(shared_server, path):
    with pytest.raises(InvalidStatus) as caught:
        connect(shared_server.ws_url + path, open_timeout=5)
    assert caught.value.response.status_code == 403


def test_accept_with_a_message_sends_it_first(shared_server):
    with connect(shared_server.ws_url + "/ws/accept-send", open_timeout=5) as ws:
        assert ws.recv(timeout=5) == "hello"


def test_accept_and_close_closes_with_the_code(shared_server):
    with connect(shared_server.ws_url + "/ws/accept-close", open_timeout=5) as ws:
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    assert ws.close_code == 4001


def test_application_closes_with_a_code(shared_server):
    with connect(shared_server.ws_url + "/ws/echo", open_timeout=5) as ws:
        ws.send("close:4005")
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    assert ws.close_code == 4005


def test_receive_order_counts_from_one(shared_server):
    with connect(shared_server.ws_url + "/ws/echo", open_timeout=5) as ws:
        answers = []
        for _ in range(5):
            ws.send("order")
            answers.append(ws.recv(timeout=5))
    assert answers == ["1", "2", "3", "4", "5"]


def test_disconnect_carries_the_close_code_and_order(backend_env, start_server):
    server = start_server([], backend_env)
    with connect(server.ws_url + "/ws/bye", open_timeout=5) as ws:
        ws.send("x")
        ws.recv(timeout=5)
        ws.close(code=4321)
    disconnect = wait_for_event(server, "websocket.disconnect")[0]
    assert disconnect["code"] == 4321
    assert disconnect["path"] == "/ws/bye"
    assert disconnect["order"] == 2


def test_a_dropped_connection_disconnects_with_1006(backend_env, start_server):
    server = start_server([], backend_env)
    conn, head = rawclient.open_websocket(server.port, "/ws/dropped")
    assert head.startswith(b"HTTP/1.1 101")
    conn.send(rawclient.frame(b"order"))
    assert conn.read_frame() == (0x1, b"1")
    conn.sock.close()  # no close frame: the client just goes away
    disconnect = wait_for_event(server, "websocket.disconnect")[0]
    assert disconnect["code"] == 1006
    assert disconnect["path"] == "/ws/dropped"
    assert disconnect["order"] == 2


def test_frames_sent_before_acceptance_are_held_and_follow_the_connect(start_server):
    server = start_server()
    early = rawclient.frame(b"order") + rawclient.frame(b"early")
    conn, head = rawclient.open_websocket(server.port, "/ws/slow-accept?ms=300", early=early)
    try:
        assert head.startswith(b"HTTP/1.1 101")
        assert conn.read_frame() == (0x1, b"1")  # order 1: right after the connect (order 0)
        assert conn.read_frame() == (0x1, b"early")
    finally:
        conn.close()


@pytest.fixture
def app_socket(start_server, redis_url, unique_prefix):
    """A server on Redis with no worker, the Redis layer for the test to answer as the app, and
    a raw connection to the server (nothing sent yet)."""
    server = start_server(env={"ECHO_BACKEND": "redis", "ECHO_REDIS_URL": redis_url,
                               "ECHO_PREFIX": unique_prefix, "ECHO_WORKER": "0"})
    layer = RedisChannelLayer(hosts=[redis_url], prefix=unique_prefix)
    conn = rawclient.Buffered(rawclient.connect(server.port))
    yield layer, conn
    conn.close()
    layer.flush()
    layer.close()


def test_early_frames_reach_the_app_only_after_it_accepts(app_socket):
    layer, conn = app_socket
    # The handshake and two frames in one write: the server has the frames when it forwards
    # the connect.
    conn.send(rawclient.handshake_request("/ws/held") + rawclient.frame(b"early1")
              + rawclient.frame(b"early2"))
    channel, connect_message = layer.receive(["websocket.connect"], block=True)
    assert channel == "websocket.connect"
    assert layer.receive(["websocket.receive"]) == (None, None)  # held, not forwarded
    layer.send(connect_message["reply_channel"], {"accept": True})
    assert conn.read_head().startswith(b"HTTP/1.1 101")
    received = [layer.receive(["websocket.receive"], block=True)[1] for _ in range(2)]
    assert [(m["text"], m["order"]) for m in received] == [("early1", 1), ("early2", 2)]


def test_early_frames_of_a_rejected_socket_never_reach_the_app(app_socket):
    layer, conn = app_socket
    conn.send(rawclient.handshake_request("/ws/held") + rawclient.frame(b"early"))
    _, connect_message = layer.receive(["websocket.connect"], block=True)
    layer.send(connect_message["reply_channel"], {"accept": False})
    assert conn.read_head().startswith(b"HTTP/1.1 403")
    # The socket's messages reach the layer in order, so anything forwarded would come before
    # its websocket.disconnect.
    channel, message = layer.receive(["websocket.receive", "websocket.disconnect"], block=True)
    assert channel == "websocket.disconnect", message
    assert layer.receive(["websocket.receive"]) == (None, None)


def test_accept_and_text_in_one_message(backend_env, start_server):
    server = start_server([], backend_env)
    with connect(server.ws_url + "/ws/accept-and-send", open_timeout=5) as ws:
        assert ws.recv(timeout=5) == "welcome"
        ws.send("still open")
        assert ws.recv(timeout=5) == "still open"


def test_too_much_data_before_acceptance_is_refused(start_server):
    server = start_server(["--max-frame-size", "1000"])
    early = rawclient.frame(b"x" * 900) + rawclient.frame(b"y" * 900)
    conn, head = rawclient.open_websocket(server.port, "/ws/noaccept", early=early)
    conn.close()
    assert head.startswith(b"HTTP/1.1 400")


def test_subprotocol_is_negotiated(start_server):
    server = start_server(["--ws-protocol", "chat", "superchat"])
    with connect(server.ws_url + "/ws/echo", subprotocols=["other", "superchat"],
                 open_timeout=5) as ws:
        assert ws.subprotocol == "superchat"
    with connect(server.ws_url + "/ws/echo", subprotocols=["other"], open_timeout=5) as ws:
        assert ws.subprotocol is None


def test_connect_timeout_refuses_the_handshake(start_server):
    server = start_server(["--websocket_connect_timeout", "0.5"])
    started = time.monotonic()
    with pytest.raises(InvalidStatus) as caught:
        connect(server.ws_url + "/ws/noaccept", open_timeout=5)
    assert caught.value.response.status_code == 504
    assert time.monotonic() - started < 3


def test_connect_timeout_minus_one_waits_forever(start_server):
    # The original compared "age > -1", which refused every pending handshake.
    server = start_server(["--websocket_connect_timeout", "-1"])
    with connect(server.ws_url + "/ws/slow-accept?ms=1200", open_timeout=5) as ws:
        ws.send("still here")
        assert ws.recv(timeout=5) == "still here"


def test_keepalive_pings_are_sent_and_answered(start_server):
    server = start_server(["--ping-interval", "0.3", "--ping-timeout", "5"])
    conn, head = rawclient.open_websocket(server.port, "/ws/echo")
    try:
        assert head.startswith(b"HTTP/1.1 101")
        opcode, payload = conn.read_frame()
        assert opcode == 0x9  # ping
        conn.send(rawclient.frame(payload, opcode=0xA))  # pong
        conn.send(rawclient.frame(b"after pong"))
        while (frame := conn.read_frame())[0] == 0x9:
            conn.send(rawclient.frame(frame[1], opcode=0xA))
        assert frame == (0x1, b"after pong")
    finally:
        conn.close()


def test_no_pong_closes_the_connection(start_server):
    server = start_server(["--ping-interval", "0.3", "--ping-timeout", "0.5"])
    conn, head = rawclient.open_websocket(server.port, "/ws/echo")
    started = time.monotonic()
    try:
        with pytest.raises(ConnectionError):
            while True:
                conn.read_frame()  # pings go unanswered
    finally:
        conn.close()
    assert time.monotonic() - started < 4
    wait_for_event(server, "websocket.disconnect")


def test_websocket_timeout_closes_after_the_lifetime(start_server):
    server = start_server(["--websocket_timeout", "0.5"])
    with connect(server.ws_url + "/ws/echo", open_timeout=5) as ws:
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    assert ws.close_code == 1000


def test_no_websocket_lifetime_limit_by_default():
    # channels#999: the original closed every socket after group_expiry (24 h) by default.
    from channels.layers.inmemory import InMemoryChannelLayer
    from channels.server import Server

    server = Server(InMemoryChannelLayer(), ["tcp:port=0"])
    assert server.websocket_timeout is None


def test_fragmented_message_over_the_limit_closes_with_1009(start_server):
    # Each fragment is under the limit; the message they add up to is not.
    server = start_server(["--max-frame-size", "1000"])
    conn, head = rawclient.open_websocket(server.port, "/ws/echo")
    try:
        assert head.startswith(b"HTTP/1.1 101")
        conn.send(rawclient.frame(b"x" * 600, opcode=0x1, fin=False)
                  + rawclient.frame(b"x" * 600, opcode=0x0, fin=True))
        opcode, payload = conn.read_frame()
        assert opcode == 0x8  # close
        assert int.from_bytes(payload[:2], "big") == 1009
    finally:
        conn.close()


def test_frame_over_the_limit_closes_with_1009(start_server):
    server = start_server(["--max-frame-size", "1000"])
    with connect(server.ws_url + "/ws/echo", open_timeout=5, compression=None) as ws:
        ws.send("x" * 2000)
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    assert ws.close_code == 1009
    with connect(server.ws_url + "/ws/echo", open_timeout=5) as ws:  # others unaffected
        ws.send("x" * 900)
        assert ws.recv(timeout=5) == "x" * 900


def test_invalid_utf8_text_closes_with_1007(shared_server):
    conn, head = rawclient.open_websocket(shared_server.port, "/ws/echo")
    try:
        assert head.startswith(b"HTTP/1.1 101")
        conn.send(rawclient.frame(b"\xff\xfe bad"))
        opcode, payload = conn.read_frame()
        assert opcode == 0x8
        assert int.from_bytes(payload[:2], "big") == 1007
    finally:
        conn.close()


def test_full_receive_channel_closes_with_1013(backend_env, start_server):
    server = start_server([], {**backend_env, "ECHO_CAPACITIES": "websocket.receive=2"})
    with connect(server.ws_url + "/ws/pause-receive?seconds=3", open_timeout=5) as ws:
        with pytest.raises(ConnectionClosed):
            for number in range(20):
                ws.send(f"m{number}")
            while True:
                ws.recv(timeout=5)
    assert ws.close_code == 1013
    server.wait_for_output(r"websocket.receive is full")


def test_full_connect_channel_refuses_with_503(backend_env, start_server):
    server = start_server(["--websocket_connect_timeout", "10"],
                          {**backend_env, "ECHO_WORKER": "0",
                           "ECHO_CAPACITIES": "websocket.connect=1"})
    conn = rawclient.Buffered(rawclient.connect(server.port))
    try:
        conn.send(rawclient.handshake_request("/ws/first"))  # fills websocket.connect
        server.wait_for_output(r"WSCONNECTING /ws/first")
        with pytest.raises(InvalidStatus) as caught:
            # The server retries a full websocket.connect for CONNECT_RETRY_SECONDS (4 s)
            # before the 503: leave room for a loaded machine.
            connect(server.ws_url + "/ws/second", open_timeout=15)
        assert caught.value.response.status_code == 503
    finally:
        conn.close()


def test_permessage_deflate_is_negotiated(shared_server):
    with connect(shared_server.ws_url + "/ws/echo", open_timeout=5) as ws:
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        ws.send("compress me " * 100)
        assert ws.recv(timeout=5) == "compress me " * 100
    assert "permessage-deflate" in extensions


def test_permessage_deflate_can_be_turned_off(start_server):
    server = start_server(["--no-permessage-deflate"])
    with connect(server.ws_url + "/ws/echo", open_timeout=5) as ws:
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        ws.send("plain")
        assert ws.recv(timeout=5) == "plain"


def test_a_burst_of_connects_is_absorbed_not_refused(backend_env, start_server):
    # daphne#67: a few hundred simultaneous connects overflowed websocket.connect → 503s.
    import asyncio

    from websockets.asyncio.client import connect as async_connect

    server = start_server([], {**backend_env, "ECHO_CAPACITIES": "websocket.connect=20"})

    async def one(number: int) -> str:
        async with async_connect(server.ws_url + "/ws/echo", open_timeout=10) as ws:
            await ws.send(f"n{number}")
            return await ws.recv()

    async def burst() -> list:
        return await asyncio.gather(*(one(n) for n in range(200)), return_exceptions=True)

    results = asyncio.run(burst())
    failures = [r for r in results if not isinstance(r, str)]
    assert not failures, f"{len(failures)} refused, e.g. {failures[0]!r}"
    assert results == [f"n{n}" for n in range(200)]


def test_a_burst_of_frames_is_slowed_by_back_pressure_not_refused(backend_env, start_server):
    """600 frames sent without waiting (a client pasting a log, a game loop): the server stops
    reading while the layer catches up instead of closing with 1013, and every frame is echoed.
    (A pending bound of 100 used to close such a socket after about 120 frames.)"""
    server = start_server([], backend_env)
    frames = [f"frame-{number}" for number in range(600)]
    with connect(server.ws_url + "/ws/echo", open_timeout=5) as ws:
        for frame in frames:
            ws.send(frame)
        echoed = [ws.recv(timeout=10) for _ in frames]
        ws.send("still-open")
        assert ws.recv(timeout=5) == "still-open"
    assert sorted(echoed) == sorted(frames)


def test_frames_beyond_the_hard_pending_bound_close_with_1013(start_server):
    """With --max-pending-messages 1 the hard bound is 10 frames: a client that packs more than
    that into data the server has already read (one TCP write here) gets the defined answer."""
    server = start_server(["--max-pending-messages", "1"], {"ECHO_BACKEND": "memory"})
    conn, head = rawclient.open_websocket(server.port, "/ws/echo")
    try:
        assert head.startswith(b"HTTP/1.1 101")
        conn.send(b"".join(rawclient.frame(f"f{n}".encode()) for n in range(200)))
        while (frame := conn.read_frame())[0] != 0x8:  # echoes of the first frames, then close
            assert frame[0] == 0x1
        assert int.from_bytes(frame[1][:2], "big") == 1013
    finally:
        conn.close()
