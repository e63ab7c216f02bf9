"""The Redis layer's per-thread connections (``channels.layers.redis.connections``).

The hot path (send, receive, group send) runs on a connection each thread holds, outside
redis-py's pool: these tests pin down what the pool used to guarantee, on a real Redis.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest
import redis

from channels.layers.redis import RedisChannelLayer
from channels.layers.redis.connections import LoopConnections


def client_id(layer: RedisChannelLayer) -> int:
    return layer._direct.call(0, "CLIENT", "ID")


def test_each_thread_sends_on_its_own_connection_and_keeps_it(redis_layers):
    layer = redis_layers()
    mine = client_id(layer)
    layer.send("conn.a", {"n": 0})
    assert client_id(layer) == mine  # held, not handed back and swapped
    seen: list[int] = []
    thread = threading.Thread(target=lambda: seen.append(client_id(layer)))
    thread.start()
    thread.join(10)
    assert seen and seen[0] != mine
    assert layer.receive(["conn.a"]) == ("conn.a", {"n": 0})


class CountingSocket:
    """The connection's real socket, with its writes counted."""

    def __init__(self, sock) -> None:
        self._sock = sock
        self.writes: list[int] = []

    def sendall(self, data) -> None:
        self.writes.append(len(data))
        self._sock.sendall(data)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def test_a_pipeline_leaves_in_one_write(redis_layers):
    # redis-py's blocking connection makes one sendall() per buffer it is given: a pipeline
    # handed over as a buffer per command cost a system call each (and Redis a read each).
    layer = redis_layers()
    layer._direct.call(0, "PING")  # connected
    conn = layer._direct.connection(0)
    counting = conn._sock = CountingSocket(conn._sock)
    replies = layer._direct.pipeline(0, [("SET", f"{layer.prefix}one", "1"),
                                         ("INCR", f"{layer.prefix}one"),
                                         ("GET", f"{layer.prefix}one")])
    assert replies == [b"OK", 2, b"2"]
    assert len(counting.writes) == 1
    layer.send("conn.p", {"n": 1})  # a layer call: one write too
    assert len(counting.writes) == 2
    assert layer.receive(["conn.p"]) == ("conn.p", {"n": 1})


def test_a_connection_the_server_dropped_while_idle_is_replaced_before_sending(
        redis_layers, redis_client):
    layer = redis_layers()
    layer.send("conn.b", {"n": 1})
    old = client_id(layer)
    redis_client.client_kill_filter(_id=old)  # as a Redis restart or an idle timeout would
    layer.send("conn.b", {"n": 2})  # no error: the dead connection is noticed first
    assert client_id(layer) != old
    assert [m["n"] for _, m in layer.receive_batch(["conn.b"], 10)] == [1, 2]


def test_close_disconnects_the_connections_of_every_thread(redis_layers, redis_client):
    layer = redis_layers()
    ids = [client_id(layer)]
    connected_there, release = threading.Event(), threading.Event()

    def other_thread() -> None:
        ids.append(client_id(layer))
        connected_there.set()
        release.wait(10)  # alive: a thread that ends takes its connections with it

    thread = threading.Thread(target=other_thread)
    thread.start()
    try:
        assert connected_there.wait(10)
        assert len(ids) == 2
        connected = {int(c["id"]) for c in redis_client.client_list()}
        assert set(ids) <= connected
        layer.close()  # from this thread, while the other still holds its connection
        connected = {int(c["id"]) for c in redis_client.client_list()}
        assert not set(ids) & connected
    finally:
        release.set()
        thread.join(10)
    layer.send("conn.c", {"n": 3})  # usable again: it reconnects
    assert layer.receive(["conn.c"]) == ("conn.c", {"n": 3})


def test_a_forked_child_does_not_share_its_parents_connection(redis_layers):
    layer = redis_layers()
    parent = client_id(layer)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its connection's id, then leave at once
        try:
            os.write(write, str(client_id(layer)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = int(pipe.read() or 0)
    os.waitpid(pid, 0)
    assert child and child != parent
    assert client_id(layer) == parent  # and the parent's still works
    layer.send("conn.d", {"n": 4})
    assert layer.receive(["conn.d"]) == ("conn.d", {"n": 4})


def loop_connections(layer: RedisChannelLayer):
    return layer._loop_state().conns


def test_an_event_loop_reuses_its_connection_and_replaces_one_the_server_dropped(
        redis_layers, redis_client):
    layer = redis_layers()

    async def scenario() -> None:
        conns = loop_connections(layer)
        first = await conns.call(0, "CLIENT", "ID")
        await layer.send_async("conn.e", {"n": 1})
        assert await conns.call(0, "CLIENT", "ID") == first
        redis_client.client_kill_filter(_id=first)
        # Let the loop see the end of stream, as it would while the connection sat idle.
        for _ in range(100):
            if not conns._idle[0][-1].is_connected or await conns._idle[0][-1].can_read():
                break
            await asyncio.sleep(0.01)
        await layer.send_async("conn.e", {"n": 2})
        assert await conns.call(0, "CLIENT", "ID") != first
        assert [m["n"] for _, m in await layer.receive_batch_async(["conn.e"], 10)] == [1, 2]
        await layer.close_async()

    asyncio.run(scenario())


def test_an_argument_redis_cannot_take_is_a_data_error_and_sends_nothing(
        redis_layers, unique_prefix):
    layer = redis_layers()
    key = unique_prefix + "unpackable"

    async def scenario() -> None:
        conns = loop_connections(layer)
        with pytest.raises(redis.exceptions.DataError, match="str, int, float or bytes"):
            await conns.pipeline(0, [("SET", key, "first"), ("SET", key, None)])
        # Nothing of the pipeline went out (not even its valid first command), and the
        # connections still work.
        assert await conns.call(0, "EXISTS", key) == 0
        assert await conns.call(0, "SET", key, b"\x00\xff") in (True, b"OK", "OK")
        assert await conns.call(0, "GET", key) == b"\x00\xff"
        await layer.close_async()

    asyncio.run(scenario())
    # The same on a thread's connection.
    with pytest.raises(redis.exceptions.DataError, match="str, int, float or bytes"):
        layer._direct.pipeline(0, [("SET", key, "first"), ("SET", key, None)])
    assert layer._direct.call(0, "EXISTS", key) == 1  # the value the loop's test left
    assert layer._direct.call(0, "GET", key) == b"\x00\xff"


def test_a_command_cancelled_half_way_never_leaves_its_reply_for_the_next(
        redis_layers, redis_client, unique_prefix):
    # A blocking pop cancelled while it waits: if its connection were reused, the entry Redis
    # hands over later would be read as the reply to an unrelated command (and lost).
    layer = redis_layers()
    key = unique_prefix + "blocked"

    async def scenario() -> None:
        conns = loop_connections(layer)
        # The idle connection the pop will take (other tests' clients block on this Redis
        # too, so the pop is recognised by its connection's id).
        ours = await conns.call(0, "CLIENT", "ID")
        waiting = asyncio.ensure_future(conns.call(0, "BLPOP", key, 30))
        deadline = time.monotonic() + 10
        while not any(int(c["id"]) == ours and c.get("cmd") == "blpop"
                      for c in redis_client.client_list()):
            assert time.monotonic() < deadline, "the BLPOP never reached Redis"
            await asyncio.sleep(0.01)  # Redis's view of a client: nothing to await but a poll
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        # The interrupted connection is closed, not handed to the next command ...
        assert await conns.call(0, "CLIENT", "ID") != ours
        # ... and once Redis has seen it go (the close is not waited for, so a push before
        # that could still be handed to the dead pop), a new entry reaches the next command.
        deadline = time.monotonic() + 10
        while any(int(c["id"]) == ours for c in redis_client.client_list()):
            assert time.monotonic() < deadline, "Redis still lists the interrupted connection"
            await asyncio.sleep(0.01)
        redis_client.rpush(key, b"later")
        assert await conns.call(0, "LPOP", key) == b"later"
        assert not conns._idle[0] or all(c.is_connected for c in conns._idle[0])
        await layer.close_async()

    asyncio.run(scenario())


def test_a_reconnected_connection_no_longer_counts_as_knowing_the_scripts(redis_layers,
                                                                           redis_client):
    # A new connection may be to a restarted server that lost them: the pipelined
    # send-then-receive must not block behind a push that may come back NOSCRIPT.
    layer = redis_layers()
    assert not layer._direct.scripts_known(0)
    layer.send("conn.f", {"n": 1})
    assert layer._direct.scripts_known(0)
    redis_client.client_kill_filter(_id=client_id(layer))
    assert client_id(layer)  # reconnects (the dropped connection is noticed first)
    assert not layer._direct.scripts_known(0)


def test_a_burst_of_sends_shares_a_bounded_number_of_connections(redis_layers):
    # 2,000 sockets speaking at once: without a bound each send opened a connection of its own
    # (2,000 handshakes, towards Redis's maxclients); now at most max_active are open, the rest
    # wait their turn, and every message arrives exactly once.
    layer = redis_layers(capacity=10_000)

    async def scenario() -> int:
        conns = loop_connections(layer)
        peak = 0
        sends = asyncio.ensure_future(asyncio.gather(
            *(layer.send_async(f"burst.{n % 20}", {"n": n}) for n in range(2000))))
        while not sends.done():  # every pass of the loop, not a timed poll
            peak = max(peak, len(conns._made))
            await asyncio.sleep(0)
        await sends
        await layer.close_async()
        return peak

    peak = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert 1 <= peak <= LoopConnections.max_active
    for channel in range(20):
        got = [m["n"] for _, m in layer.receive_batch([f"burst.{channel}"], 200)]
        assert sorted(got) == list(range(channel, 2000, 20))  # each once (concurrent
        # sends have no order between them)


def test_blocked_receives_do_not_take_the_connections_sends_need(
        redis_layers, redis_client, unique_prefix, monkeypatch):
    # More receivers blocked at once than max_active: their pops are not counted, so a send
    # still goes out at once and wakes its receiver.
    monkeypatch.setattr(LoopConnections, "max_active", 4)
    name = "blocked-" + unique_prefix.strip(":")
    layer = redis_layers(blocking_timeout=3,
                         connection_kwargs={"client_name": name})

    def blocked() -> int:
        return sum(c.get("name") == name and c.get("cmd") in ("blmpop", "blpop")
                   for c in redis_client.client_list())

    async def scenario() -> None:
        receivers = [asyncio.ensure_future(layer.receive_async([f"idle.{n}"]))
                     for n in range(8)]
        deadline = time.monotonic() + 10
        while blocked() < 8:  # Redis's view of its clients: nothing to await but a poll
            assert time.monotonic() < deadline, "the receives never all blocked"
            await asyncio.sleep(0.01)
        started = time.monotonic()
        await asyncio.wait_for(layer.send_async("idle.7", {"n": 7}), 5)
        assert await asyncio.wait_for(receivers[7], 5) == ("idle.7", {"n": 7})
        assert time.monotonic() - started < 2  # not after the pops' 3 s timeout
        for receiver in receivers:
            receiver.cancel()
        await asyncio.gather(*receivers, return_exceptions=True)
        await layer.close_async()

    asyncio.run(scenario())
