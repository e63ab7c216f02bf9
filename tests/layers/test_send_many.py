"""``send_many`` / ``send_many_async``: many replies in one call (one round trip per Redis shard),
a flag per message instead of ``ChannelFull``, and bad input that writes nothing. Run against
every backend configuration, like the conformance suite."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.redis_counting import CountingConnection


def drain(layer: Any, channel: str) -> list[dict]:
    got = []
    while True:
        name, message = layer.receive([channel])
        if name is None:
            return got
        got.append(message)


def test_send_many_delivers_each_message_once_in_order_per_channel(layer):
    socket = layer.new_channel("many.srv!")
    single = layer.new_channel("many.reply?")
    messages = [("many.a", {"n": 0}), (socket, {"n": 1}), ("many.b", {"n": 2}),
                (single, {"n": 3}), ("many.a", {"n": 4}), (socket, {"n": 5})]
    assert layer.send_many(messages) == [True] * 6
    assert drain(layer, "many.a") == [{"n": 0}, {"n": 4}]
    assert drain(layer, "many.b") == [{"n": 2}]
    assert drain(layer, single) == [{"n": 3}]
    got = layer.receive_batch(["many.srv!"], 10)
    assert got == [(socket, {"n": 1}), (socket, {"n": 5})]
    assert layer.send_many([]) == []


def test_send_many_flags_full_channels_instead_of_raising(make_layer):
    layer = make_layer(capacity=2, process_capacity=3)
    socket = layer.new_channel("many.srv!")
    flags = layer.send_many([("many.full", {"n": n}) for n in range(3)]
                            + [(socket, {"n": n}) for n in range(3)])
    assert flags == [True, True, False, True, True, False]
    assert [m["n"] for m in drain(layer, "many.full")] == [0, 1]
    assert layer.global_statistics()["channel_full_count"] == 2
    assert layer.global_statistics()["messages_count"] == 4


@pytest.mark.parametrize(("messages", "error"), [
    ([("many.ok", {"n": 1}), ("bad name", {"n": 2})], ValueError),
    ([("many.ok", {"n": 1}), ("many.ok", {"when": object()})], TypeError),
    ([("many.ok", {"n": 1}), ("many.ok", {"n": 2}, "extra")], TypeError),
    ([("many.ok", {"n": 1}), ["many.ok"]], TypeError),
    ({"many.ok": {"n": 1}}, TypeError),
    ("many.ok", TypeError),
])
def test_send_many_bad_input_raises_and_writes_nothing(layer, messages, error):
    with pytest.raises(error):
        layer.send_many(messages)
    assert layer.receive(["many.ok"]) == (None, None)


def test_send_many_async_returns_flags_and_delivers(make_layer):
    layer = make_layer(capacity=1, blocking_timeout=0.5)
    socket = layer.new_channel("many.srv!")

    async def scenario() -> Any:
        try:
            flags = await layer.send_many_async([(socket, {"n": 1}), (socket, {"n": 2}),
                                                 ("many.x", {"n": 3})])
            got = await layer.receive_batch_async(["many.srv!", "many.x"], 10)
            return flags, got
        finally:
            if hasattr(layer, "close_async"):
                await layer.close_async()

    flags, got = asyncio.run(scenario())
    assert flags == [True, False, True]
    assert sorted(got, key=lambda item: item[1]["n"]) == [(socket, {"n": 1}),
                                                          ("many.x", {"n": 3})]


def test_send_many_async_bad_input_writes_nothing(layer):
    async def scenario() -> None:
        await layer.send_many_async([("many.ok", {"n": 1}), ("many.ok", {"bad": {1, 2}})])

    with pytest.raises(TypeError):
        asyncio.run(scenario())
    assert layer.receive(["many.ok"]) == (None, None)


def test_redis_send_many_is_one_round_trip_per_shard(redis_layers):
    layer = redis_layers(connection_kwargs={"connection_class": CountingConnection})
    sockets = [layer.new_channel("many.srv!") for _ in range(8)]
    layer.send_many([(sockets[0], {"warm": True})])  # loads the script on a fresh server
    before = CountingConnection.writes
    assert layer.send_many([(socket, {"n": n}) for n, socket in enumerate(sockets)]) \
        == [True] * 8
    assert CountingConnection.writes - before == 1
    assert len(layer.receive_batch(["many.srv!"], 20)) == 9
