"""The server's coalescing of ``http.request`` sends, against the real layers.

Sends made during one pass of the event loop go together in one ``send_many_async``; each
caller still gets exactly the answer a lone ``send_async`` would have given it.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from channels.asgi import ChannelLayerWrapper
from channels.layers.base import ChannelFull, LayerUnavailable, MessageTooLarge
from channels.layers.inmemory import InMemoryChannelLayer
from channels.layers.redis import RedisChannelLayer
from channels.server.coalescing import CoalescingSender


@pytest.fixture
def make_redis(redis_url, unique_prefix):
    layers = []

    def make(**options):
        options.setdefault("capacity", 1000)
        layer = RedisChannelLayer(hosts=[redis_url], prefix=unique_prefix, **options)
        layers.append(layer)
        return layer

    yield make
    for layer in layers:
        layer.flush()
        layer.close()


def run(scenario, layer=None):
    """Run ``scenario()`` on a fresh loop, closing the layer's asyncio clients on that loop."""

    async def main():
        try:
            return await asyncio.wait_for(scenario(), timeout=20)
        finally:
            if hasattr(layer, "close_async"):
                await layer.close_async()

    return asyncio.run(main())


def drain(layer, channel: str = "http.request") -> list[int]:
    numbers = []
    while True:
        got, message = layer.receive([channel])
        if got is None:
            return numbers
        numbers.append(message["n"])


def counting_send_many(layer) -> list[int]:
    """Record the size of every ``send_many_async`` call the layer gets."""
    calls: list[int] = []
    original = layer.send_many_async

    async def counting(messages):
        calls.append(len(messages))
        return await original(messages)

    layer.send_many_async = counting
    return calls


def send_all(sender, messages):
    async def scenario():
        return await asyncio.gather(*(sender.send(message) for message in messages),
                                    return_exceptions=True)
    return scenario


def test_sends_of_one_loop_pass_go_in_one_batch(make_redis):
    layer = make_redis()
    calls = counting_send_many(layer)
    sender = CoalescingSender(layer, "http.request")
    assert run(send_all(sender, [{"n": n} for n in range(20)]), layer) == [None] * 20
    assert calls == [20]
    assert sender.coalesced == 20
    assert not sender.in_flight
    assert drain(layer) == list(range(20))  # once each, in order


def test_batches_are_split_at_max_batch(make_redis):
    layer = make_redis()
    calls = counting_send_many(layer)
    sender = CoalescingSender(layer, "http.request", max_batch=4)
    assert run(send_all(sender, [{"n": n} for n in range(10)]), layer) == [None] * 10
    assert calls == [4, 4, 2]
    assert sender.coalesced == 10
    assert sorted(drain(layer)) == list(range(10))


def test_batches_are_split_by_payload_bytes_too(make_redis):
    layer = make_redis()
    calls = counting_send_many(layer)
    sender = CoalescingSender(layer, "websocket.receive", max_batch_bytes=1000)
    # 300-byte frames: three fit in 1000 bytes; a frame over the limit goes alone (a
    # single message is never refused for its size here: that is the layer's call).
    messages = [{"n": n, "text": "x" * 300} for n in range(7)]
    messages.insert(4, {"n": 99, "bytes": b"y" * 1500})
    assert run(send_all(sender, messages), layer) == [None] * 8
    # [0, 1, 2], then [3] (a fourth would pass 1000), [99] alone, [4, 5, 6]: single
    # messages go as plain sends, the others as two batches of three.
    assert calls == [3, 3]
    assert sorted(drain(layer, "websocket.receive")) == [0, 1, 2, 3, 4, 5, 6, 99]


def test_full_channel_refuses_exactly_the_messages_over_capacity(make_redis):
    layer = make_redis(capacity=5)
    sender = CoalescingSender(layer, "http.request")
    results = run(send_all(sender, [{"n": n} for n in range(12)]), layer)
    assert results[:5] == [None] * 5
    assert all(isinstance(result, ChannelFull) for result in results[5:]), results
    assert drain(layer) == [0, 1, 2, 3, 4]
    assert layer.channel_statistics("http.request")["channel_full_count"] == 7


def test_a_message_too_large_fails_alone(make_redis):
    layer = make_redis()
    sender = CoalescingSender(layer, "http.request")
    too_large = {"n": 2, "body": b"x" * (layer.max_message_size + 1)}
    messages = [{"n": 0}, {"n": 1}, too_large, {"n": 3}, {"n": 4}]
    results = run(send_all(sender, messages), layer)
    assert isinstance(results[2], MessageTooLarge)
    assert [r for i, r in enumerate(results) if i != 2] == [None] * 4
    assert sorted(drain(layer)) == [0, 1, 3, 4]


def test_a_caller_cancelled_before_the_flush_sends_nothing(make_redis):
    layer = make_redis()
    sender = CoalescingSender(layer, "http.request")

    async def scenario():
        tasks = [asyncio.ensure_future(sender.send({"n": n})) for n in range(3)]
        await asyncio.sleep(0)  # all three have queued their message; none is sent yet
        tasks[2].cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = run(scenario, layer)
    assert results[:2] == [None, None]
    assert isinstance(results[2], asyncio.CancelledError)
    assert drain(layer) == [0, 1]
    assert not sender.in_flight


def test_a_caller_cancelled_once_its_batch_went_out_changes_nothing_for_the_others(make_redis):
    # The batch is taken by the first step of the task that sends it, so a cancel comes either
    # before (nothing sent: the test above) or after the batch was taken: then the message is
    # delivered exactly once (sent or not is unknown to a cancelled caller, as for any send)
    # and the others succeed.
    layer = make_redis()
    sender = CoalescingSender(layer, "http.request")

    async def scenario():
        tasks = [asyncio.ensure_future(sender.send({"n": n})) for n in range(3)]
        await asyncio.sleep(0)  # all queued; the batch task is next in the loop's ready queue
        seen = []

        def cancel_one():  # runs after the batch task's first step took the batch
            seen.append((len(sender.waiting), sender.in_flight))
            tasks[1].cancel()

        asyncio.get_running_loop().call_soon(cancel_one)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert seen == [(0, True)]
        return results

    results = run(scenario, layer)
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], asyncio.CancelledError)
    assert drain(layer) == [0, 1, 2]
    assert sender.coalesced == 3


def test_a_flush_cancelled_before_it_ran_leaves_no_sender_stuck(make_redis):
    # A loop shutting down cancels every task, a flush that never ran included: its messages
    # were never taken, their senders are told (cancelled), and later sends still go out.
    layer = make_redis()
    sender = CoalescingSender(layer, "http.request")

    async def scenario():
        first = sender.submit({"n": 1})
        flusher = next(iter(sender._in_flight))
        flusher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await flusher  # woken after the sender's own done-callbacks (registered first)
        assert first.cancelled()
        assert not sender.in_flight
        await asyncio.wait_for(sender.send({"n": 2}), timeout=10)

    run(scenario, layer)
    assert drain(layer) == [2]


def test_unreachable_redis_fails_every_caller_with_its_own_error(unique_prefix):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    layer = RedisChannelLayer(hosts=[f"redis://127.0.0.1:{port}/0"], prefix=unique_prefix)
    sender = CoalescingSender(layer, "http.request")
    try:
        results = run(send_all(sender, [{"n": n} for n in range(6)]), layer)
    finally:
        layer.close()
    assert all(isinstance(result, LayerUnavailable) for result in results), results
    assert len({id(result) for result in results}) == 6  # no exception object is shared
    assert not sender.in_flight


def test_in_memory_layer(unique_prefix):
    layer = InMemoryChannelLayer(capacity=3)
    calls = counting_send_many(layer)
    sender = CoalescingSender(layer, "http.request")
    results = run(send_all(sender, [{"n": n} for n in range(5)]))
    assert calls == [5]
    assert results[:3] == [None] * 3
    assert all(isinstance(result, ChannelFull) for result in results[3:])
    assert drain(layer) == [0, 1, 2]


def test_through_the_registry_wrapper(make_redis):
    layer = make_redis()
    wrapper = ChannelLayerWrapper(layer, "default", [])
    sender = CoalescingSender(wrapper, "http.request")
    assert sender.batching
    assert run(send_all(sender, [{"n": n} for n in range(5)]), layer) == [None] * 5
    assert sender.coalesced == 5
    assert drain(layer) == list(range(5))


def test_a_layer_without_atomic_send_many_gets_plain_concurrent_sends():
    class PartFailing(InMemoryChannelLayer):
        """Its generic send_many would queue the first messages, then fail part-way."""

        atomic_send_many = False
        sends = 0

        async def send_async(self, channel, message):
            self.sends += 1
            if self.sends == 3:
                raise LayerUnavailable("down for one send")
            await super().send_async(channel, message)

    layer = PartFailing()
    sender = CoalescingSender(layer, "http.request")
    assert not sender.batching
    results = run(send_all(sender, [{"n": n} for n in range(5)]))
    assert isinstance(results[2], LayerUnavailable)
    assert [r for i, r in enumerate(results) if i != 2] == [None] * 4
    assert drain(layer) == [0, 1, 3, 4]  # nothing sent twice


@pytest.mark.parametrize("max_batch", [64, 3])
def test_sockets_frames_share_batches_and_each_socket_keeps_its_order(make_redis, max_batch):
    # Frames of different sockets go through one shared sender (as the server wires
    # websocket.receive): those queued in one pass share a script call, while each socket's
    # own sender still has one message in flight, so its frames arrive in the order sent.
    from channels.server.sending import OrderedSender

    layer = make_redis()
    calls = counting_send_many(layer)
    # max_batch 3: a pass's frames go in several batches at once, whose order among them is
    # not fixed; a socket's frames still cannot overtake each other (one in flight).
    shared = CoalescingSender(layer, "websocket.receive", max_batch=max_batch)

    async def scenario():
        sockets = [OrderedSender(layer, max_pending=100, shared={"websocket.receive": shared})
                   for _ in range(10)]
        for number in range(5):
            for index, sender in enumerate(sockets):
                assert sender.send("websocket.receive", {"n": index * 100 + number})
        while any(sender.pending for sender in sockets):  # each pass drains one per socket
            await asyncio.sleep(0)

    run(scenario, layer)
    got = drain(layer, "websocket.receive")
    assert sorted(got) == sorted(i * 100 + n for i in range(10) for n in range(5))
    for index in range(10):
        assert [n for n in got if n // 100 == index] == [index * 100 + n for n in range(5)]
    assert calls and max(calls) == min(10, max_batch)  # one frame per socket and round
    if max_batch >= 10:
        assert sum(calls) == 50  # five batches of ten, one per round
