"""The server's coalescing of ``http.request`` sends, against the real layers.

Sends made during one pass of the event loop go together in one ``send_many_async``; each
caller still gets exactly the answer a lone ``send_async`` would have given it.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from channels.layers.base import ChannelFull, LayerUnavailable, MessageTooLarge
from channels.layers.inmemory import InMemoryChannelLayer
from channels.layers.redis import RedisChannelLayer
from channels.server.coalescing import CoalescingSender


@pytest.fixture
def redis_layer(redis_url: str, unique_prefix: str):
    layer = RedisChannelLayer(hosts=[redis_url], prefix=unique_prefix, capacity=1000)
    yield layer
    layer.flush()
    layer.close()


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, timeout=20))


def drain(layer, channel: str) -> list[int]:
    numbers = []
    while True:
        got, message = layer.receive([channel])
        if got is None:
            return numbers
        numbers.append(message["n"])


def test_sends_behind_one_in_flight_go_in_one_batch(redis_layer):
    sender = CoalescingSender(redis_layer, "http.request")

    async def scenario():
        calls = []
        send_many = redis_layer.send_many_async

        async def counting(messages):
            calls.append(len(messages))
            return await send_many(messages)

        redis_layer.send_many_async = counting
        try:
            await asyncio.gather(*(sender.send({"n": n}) for n in range(20)))
        finally:
            del redis_layer.send_many_async
        return calls

    # All twenty were made during one pass of the event loop: one batch, one round trip.
    assert run(scenario()) == [20]
    assert sender.coalesced == 20
    assert not sender.in_flight
    assert drain(redis_layer, "http.request") == list(range(20))  # once each, in order


def test_full_channel_refuses_exactly_the_messages_over_capacity(redis_url, unique_prefix):
    layer = RedisChannelLayer(hosts=[redis_url], prefix=unique_prefix, capacity=5)
    sender = CoalescingSender(layer, "http.request")

    async def scenario():
        return await asyncio.gather(*(sender.send({"n": n}) for n in range(12)),
                                    return_exceptions=True)

    try:
        results = run(scenario())
        assert results[:5] == [None] * 5
        assert all(isinstance(result, ChannelFull) for result in results[5:]), results
        assert drain(layer, "http.request") == [0, 1, 2, 3, 4]
    finally:
        layer.flush()
        layer.close()


def test_a_message_too_large_fails_alone(redis_layer):
    sender = CoalescingSender(redis_layer, "http.request")
    too_large = {"n": 2, "body": b"x" * (redis_layer.max_message_size + 1)}
    messages = [{"n": 0}, {"n": 1}, too_large, {"n": 3}, {"n": 4}]

    async def scenario():
        return await asyncio.gather(*(sender.send(message) for message in messages),
                                    return_exceptions=True)

    results = run(scenario())
    assert isinstance(results[2], MessageTooLarge)
    assert [r for i, r in enumerate(results) if i != 2] == [None] * 4
    assert drain(redis_layer, "http.request") == [0, 1, 3, 4]


def test_a_cancelled_caller_still_waiting_sends_nothing(redis_layer):
    sender = CoalescingSender(redis_layer, "http.request")

    async def scenario():
        tasks = [asyncio.ensure_future(sender.send({"n": n})) for n in range(3)]
        await asyncio.sleep(0)  # all three have queued their message; none is sent yet
        tasks[2].cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = run(scenario())
    assert results[:2] == [None, None]
    assert isinstance(results[2], asyncio.CancelledError)
    assert drain(redis_layer, "http.request") == [0, 1]
    assert not sender.waiting and not sender.in_flight


def test_unreachable_redis_fails_every_caller_and_recovers_nothing_lost(unique_prefix):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    layer = RedisChannelLayer(hosts=[f"redis://127.0.0.1:{port}/0"], prefix=unique_prefix)
    sender = CoalescingSender(layer, "http.request")

    async def scenario():
        return await asyncio.gather(*(sender.send({"n": n}) for n in range(6)),
                                    return_exceptions=True)

    try:
        results = run(scenario())
    finally:
        layer.close()
    assert all(isinstance(result, LayerUnavailable) for result in results), results
    assert not sender.waiting and not sender.in_flight


def test_in_memory_layer(unique_prefix):
    layer = InMemoryChannelLayer(capacity=3)
    sender = CoalescingSender(layer, "http.request")

    async def scenario():
        return await asyncio.gather(*(sender.send({"n": n}) for n in range(5)),
                                    return_exceptions=True)

    results = run(scenario())
    assert results[:3] == [None] * 3
    assert all(isinstance(result, ChannelFull) for result in results[3:])
    assert drain(layer, "http.request") == [0, 1, 2]


def test_a_layer_without_send_many_gets_plain_sends():
    class Plain:
        def __init__(self):
            self.sent = []

        async def send_async(self, channel, message):
            await asyncio.sleep(0)
            self.sent.append((channel, message["n"]))

    layer = Plain()
    sender = CoalescingSender(layer, "http.request")

    async def scenario():
        await asyncio.gather(*(sender.send({"n": n}) for n in range(4)))

    run(scenario())
    assert sorted(layer.sent) == [("http.request", n) for n in range(4)]
    assert sender.coalesced == 0
