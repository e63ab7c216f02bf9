"""``send_then_receive_batch``: a worker's replies and its next receive in one call (one round
trip on Redis when they share a shard). Run against every backend configuration."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis

from tests.redis_counting import CountingConnection


def test_sends_then_receives_what_was_queued(layer):
    socket = layer.new_channel("str.srv!")
    layer.send("str.requests", {"n": 1})
    layer.send("str.requests", {"n": 2})
    flags, got = layer.send_then_receive_batch(
        [(socket, {"reply": 0}), ("str.other", {"reply": 1})], ["str.requests"], 1)
    assert flags == [True, True]
    assert got == [("str.requests", {"n": 1})]
    assert layer.receive_batch(["str.srv!"], 10) == [(socket, {"reply": 0})]
    assert layer.receive(["str.other"]) == ("str.other", {"reply": 1})
    flags, got = layer.send_then_receive_batch([], ["str.requests"], 5)
    assert (flags, got) == ([], [("str.requests", {"n": 2})])


def test_the_sends_go_out_even_when_the_receive_then_waits(make_layer):
    layer = make_layer(blocking_timeout=0.3)
    started = time.monotonic()
    flags, got = layer.send_then_receive_batch([("str.reply", {"n": 1})], ["str.idle"], 1,
                                               block=True)
    waited = time.monotonic() - started
    assert (flags, got) == ([True], [])
    assert 0.2 <= waited < 5, waited  # blocked for about blocking_timeout, not forever
    assert layer.receive(["str.reply"]) == ("str.reply", {"n": 1})


def test_a_full_channel_is_flagged_and_the_receive_still_happens(make_layer):
    layer = make_layer(capacity=1)
    layer.send("str.full", {"n": 0})
    layer.send("str.requests", {"n": 1})
    flags, got = layer.send_then_receive_batch(
        [("str.full", {"n": 1}), ("str.free", {"n": 2})], ["str.requests"], 1)
    assert flags == [False, True]
    assert got == [("str.requests", {"n": 1})]
    assert layer.receive(["str.full"]) == ("str.full", {"n": 0})
    assert layer.receive(["str.full"]) == (None, None)


@pytest.mark.parametrize(("messages", "error"), [
    ([("str.ok", {"n": 1}), ("bad name", {"n": 2})], ValueError),
    ([("str.ok", {"n": 1}), ("str.ok", {"when": object()})], TypeError),
    ([("str.ok", {"n": 1}), ("str.ok",)], TypeError),
])
def test_bad_input_raises_and_neither_sends_nor_receives(layer, messages, error):
    layer.send("str.requests", {"n": 1})
    with pytest.raises(error):
        layer.send_then_receive_batch(messages, ["str.requests"], 1)
    assert layer.receive(["str.ok"]) == (None, None)
    assert layer.receive(["str.requests"]) == ("str.requests", {"n": 1})  # still there


def test_redis_does_both_in_one_round_trip(redis_layers):
    layer = redis_layers(connection_kwargs={"connection_class": CountingConnection})
    socket = layer.new_channel("str.srv!")
    layer.send_many([(socket, {"warm": True})])  # loads the script on a fresh server
    layer.send("str.requests", {"n": 1})
    before = CountingConnection.writes
    flags, got = layer.send_then_receive_batch([(socket, {"reply": 1})], ["str.requests"],
                                               1, block=True)
    assert CountingConnection.writes - before == 1
    assert (flags, got) == ([True], [("str.requests", {"n": 1})])
    assert len(layer.receive_batch(["str.srv!"], 10)) == 2


def test_redis_after_a_restart_loads_the_script_and_keeps_what_it_popped(redis_layers,
                                                                        second_redis_url):
    layer = redis_layers(hosts=[second_redis_url])
    admin = redis.Redis.from_url(second_redis_url)
    try:
        layer.send("str.requests", {"n": 1})
        admin.script_flush()  # as after a restart: the push script is unknown
        flags, got = layer.send_then_receive_batch([("str.reply", {"n": 2})],
                                                   ["str.requests"], 1)
        assert (flags, got) == ([True], [("str.requests", {"n": 1})])
        assert layer.receive(["str.reply"]) == ("str.reply", {"n": 2})
    finally:
        admin.close()


def test_redis_keeps_what_it_popped_when_the_push_beside_it_fails(redis_layers, redis_client,
                                                                  unique_prefix):
    # The pop runs whatever becomes of the push written with it; an error reply for the push
    # must not take the popped request down with it.
    layer = redis_layers()
    layer.send("str.requests", {"n": 1})
    redis_client.set(unique_prefix + "str.broken", b"not a list")  # the push gets WRONGTYPE
    with pytest.raises(redis.exceptions.ResponseError):
        layer.send_then_receive_batch([("str.broken", {"n": 2})], ["str.requests"], 1)
    assert layer.receive(["str.requests"]) == ("str.requests", {"n": 1})


def test_redis_after_a_restart_a_blocking_call_sends_at_once(redis_layers, second_redis_url):
    # A connection that has not run a script yet (as every connection after a restart) pops
    # without blocking first: a push refused for a missing script is retried before the
    # receive waits, not after blocking_timeout.
    layer = redis_layers(hosts=[second_redis_url], blocking_timeout=3)
    reader = redis_layers(hosts=[second_redis_url])
    admin = redis.Redis.from_url(second_redis_url)
    got: dict[str, Any] = {}
    try:
        layer.send("str.warm", {"n": 0})  # a live connection, then the scripts vanish
        admin.script_flush()
        thread = threading.Thread(target=lambda: got.update(result=layer.send_then_receive_batch(
            [("str.reply", {"n": 1})], ["str.idle"], 1, block=True)))
        thread.start()
        started = time.monotonic()
        deadline = started + 5
        while reader.receive(["str.reply"])[0] is None and time.monotonic() < deadline:
            time.sleep(0.01)  # nothing to await across processes' queues: poll, bounded
        arrived = time.monotonic() - started
        layer.send("str.idle", {"wake": True})  # end the blocking receive
        thread.join(5)
        assert arrived < 1.5, f"the reply waited {arrived:.2f}s for the blocking pop"
        assert got["result"][0] == [True]
    finally:
        admin.close()
