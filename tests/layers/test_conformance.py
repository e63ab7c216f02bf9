"""The layer contract (docs/layers.md), checked identically against every backend configuration."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from channels.layers.base import ChannelFull, MessageTooLarge


def run_async(layer: Any, make_coroutine: Callable[[], Awaitable[Any]]) -> Any:
    """Run a coroutine on a fresh loop, then release that loop's connections."""

    async def main() -> Any:
        try:
            return await make_coroutine()
        finally:
            close = getattr(layer, "close_async", None)
            if close is not None:
                await close()

    return asyncio.run(main())


@contextlib.contextmanager
def sent_soon(layer: Any, channel: str, message: dict, delay: float = 0.1) -> Iterator[None]:
    """Send from another thread after ``delay``; on exit wait for that thread to finish, so
    that the layer is never closed under a send still reading its reply."""
    timer = threading.Timer(delay, layer.send, (channel, message))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join(5)


def names_on_two_shards(layer: Any) -> tuple[str, str]:
    """Two channel names that live on different shards when the layer has two."""
    shard_of = getattr(layer, "_shard_of", lambda name: 0)
    first = "shard.test.a"
    for index in range(1000):
        candidate = f"shard.test.{index}"
        if shard_of(candidate) != shard_of(first):
            return first, candidate
    return first, "shard.test.b"


# -- send and receive ----------


def test_send_then_receive_returns_the_message(layer):
    message = {"text": "hi", "bytes": b"\x00\xff", "int": -(2**63), "float": 1.5,
               "list": [1, (2, 3)], "nested": {"ok": True, "none": None}}
    layer.send("test.channel", message)
    channel, received = layer.receive(["test.channel"])
    assert channel == "test.channel"
    assert received == {**message, "list": [1, [2, 3]]}


def test_receive_without_messages_returns_none_at_once(layer):
    started = time.monotonic()
    assert layer.receive(["test.empty"]) == (None, None)
    assert time.monotonic() - started < 0.3


def test_blocking_receive_returns_within_its_bound(make_layer):
    layer = make_layer(blocking_timeout=0.3)
    started = time.monotonic()
    assert layer.receive(["test.empty"], block=True) == (None, None)
    assert 0.25 <= time.monotonic() - started < 1.5


def test_blocking_receive_wakes_when_another_thread_sends(make_layer):
    layer = make_layer(blocking_timeout=5)
    started = time.monotonic()
    with sent_soon(layer, "test.wake", {"n": 1}):
        assert layer.receive(["test.wake"], block=True) == ("test.wake", {"n": 1})
    assert time.monotonic() - started < 2


def test_blocking_receive_over_two_shards_is_not_stalled_by_either(make_layer):
    layer = make_layer(blocking_timeout=2)
    first, second = names_on_two_shards(layer)
    for target in (first, second):
        started = time.monotonic()
        with sent_soon(layer, target, {"to": target}):
            assert layer.receive([first, second], block=True) == (target, {"to": target})
            elapsed = time.monotonic() - started
        assert elapsed < 1.5, f"receive stalled waiting for {target}"


def test_receive_batch_returns_up_to_limit_in_order(layer):
    for index in range(7):
        layer.send("test.batch", {"n": index})
    first = layer.receive_batch(["test.batch"], 5)
    assert [message["n"] for _, message in first] == [0, 1, 2, 3, 4]
    rest = layer.receive_batch(["test.batch"], 5, block=True)
    assert [message["n"] for _, message in rest] == [5, 6]
    assert layer.receive_batch(["test.batch"], 5) == []


def test_receive_many_is_the_deprecated_name_of_receive(layer):
    layer.send("test.old", {"a": 1})
    with pytest.deprecated_call():
        assert layer.receive_many(["test.old"]) == ("test.old", {"a": 1})


def test_layer_exposes_extensions_and_exceptions(layer):
    assert {"groups", "flush", "statistics", "asyncio", "twisted"} <= set(layer.extensions)
    assert layer.ChannelFull is ChannelFull
    assert layer.MessageTooLarge is MessageTooLarge


# -- ordering and process-specific channels -----------------------------------------------------


def test_single_reader_channel_keeps_order(layer):
    channel = layer.new_channel("test.reply?")
    for index in range(50):
        layer.send(channel, {"n": index})
    received = [layer.receive([channel])[1]["n"] for _ in range(50)]
    assert received == list(range(50))


def test_process_channels_are_demultiplexed_in_order(layer):
    socket_a = layer.new_channel("test.server!")
    socket_b = layer.new_channel("test.server!")
    other = layer.new_channel("test.other!")
    for index in range(10):
        layer.send(socket_a, {"n": index})
        layer.send(socket_b, {"n": index})
    layer.send(other, {"n": "other"})
    received = layer.receive_batch(["test.server!"], 100)
    assert [(c, m["n"]) for c, m in received if c == socket_a] == [(socket_a, i) for i in range(10)]
    assert [(c, m["n"]) for c, m in received if c == socket_b] == [(socket_b, i) for i in range(10)]
    assert len(received) == 20
    assert layer.receive(["test.other!"]) == (other, {"n": "other"})


def test_process_channel_is_received_through_its_prefix_only(layer):
    with pytest.raises(ValueError, match="test.server!abc"):
        layer.receive(["test.server!abc"])


def test_new_channel_names_are_unique_and_follow_the_pattern(layer):
    names = {layer.new_channel("test.unique?") for _ in range(500)}
    names |= {layer.new_channel("test.unique!") for _ in range(500)}
    assert len(names) == 1000
    assert all(re.fullmatch(r"test\.unique[?!][A-Za-z0-9]{12}", name) for name in names)


@pytest.mark.parametrize("pattern", ["test.plain", "test.x?y", "", "bad name?", "?", 7])
def test_new_channel_refuses_other_patterns(layer, pattern):
    with pytest.raises((ValueError, TypeError), match=re.escape(repr(pattern))):
        layer.new_channel(pattern)


# -- capacity ----------


def test_send_raises_channel_full_at_capacity(make_layer):
    layer = make_layer(capacity=3)
    for index in range(3):
        layer.send("test.full", {"n": index})
    with pytest.raises(ChannelFull):
        layer.send("test.full", {"n": 3})
    assert layer.receive(["test.full"])[1] == {"n": 0}
    layer.send("test.full", {"n": 4})
    assert [m["n"] for _, m in layer.receive_batch(["test.full"], 10)] == [1, 2, 4]


def test_channel_capacity_patterns_apply_globs_and_regexes_first_match_wins(make_layer):
    layer = make_layer(capacity=5, channel_capacity={"test.small*": 1,
                                                     re.compile(r"^test\.mid$"): 2})
    layer.send("test.small.one", {})
    with pytest.raises(ChannelFull):
        layer.send("test.small.one", {})
    layer.send("test.mid", {})
    layer.send("test.mid", {})
    with pytest.raises(ChannelFull):
        layer.send("test.mid", {})
    for _ in range(5):
        layer.send("test.default", {})
    with pytest.raises(ChannelFull):
        layer.send("test.default", {})


def test_capacity_of_process_channels_is_per_socket(make_layer):
    layer = make_layer(capacity=2)
    socket_a = layer.new_channel("test.server!")
    socket_b = layer.new_channel("test.server!")
    for _ in range(2):
        layer.send(socket_a, {})
        layer.send(socket_b, {})
    with pytest.raises(ChannelFull):
        layer.send(socket_a, {})
    assert len(layer.receive_batch(["test.server!"], 10)) == 4
    layer.send(socket_a, {})  # reading freed room again


def test_process_prefix_has_its_own_bound(make_layer):
    layer = make_layer(capacity=5, process_capacity=3)
    sockets = [layer.new_channel("test.server!") for _ in range(4)]
    for socket in sockets[:3]:
        layer.send(socket, {})
    with pytest.raises(ChannelFull):
        layer.send(sockets[3], {})


# -- groups ----------


def test_group_send_reaches_every_member_once(layer):
    members = ["test.member.a", layer.new_channel("test.server!"), layer.new_channel("test.r?")]
    for member in members:
        layer.group_add("test-group", member)
        layer.group_add("test-group", member)  # idempotent
    assert sorted(layer.group_channels("test-group")) == sorted(members)
    layer.send_group("test-group", {"hello": "all"})
    received = []
    for member in members:
        received += layer.receive_batch(["test.server!" if "!" in member else member], 10)
    assert sorted(received) == sorted((member, {"hello": "all"}) for member in members)


def test_group_send_to_101_sockets_of_one_server_loses_nothing(layer):
    sockets = [layer.new_channel("test.server!") for _ in range(101)]
    for socket in sockets:
        layer.group_add("test-big", socket)
    for round_number in range(3):
        layer.send_group("test-big", {"round": round_number})
    received = layer.receive_batch(["test.server!"], 1000)
    assert Counter(channel for channel, _ in received) == Counter({s: 3 for s in sockets})


def test_group_send_skips_full_members_and_never_raises(make_layer):
    layer = make_layer(capacity=1)
    layer.group_add("test-group", "test.full")
    layer.group_add("test-group", "test.free")
    layer.send("test.full", {"first": True})
    layer.send_group("test-group", {"group": True})  # no ChannelFull
    assert layer.receive_batch(["test.full"], 10) == [("test.full", {"first": True})]
    assert layer.receive_batch(["test.free"], 10) == [("test.free", {"group": True})]
    assert layer.channel_statistics("test.full")["channel_full_count"] == 1


def test_group_burst_to_sockets_of_a_busy_server_loses_nothing_at_default_capacity(make_layer):
    """channels#763: 150 group messages reach 120 sockets of one server that has not read any
    of them yet. A socket channel in a group is bounded by the process queue, not by the
    per-socket default of 100, so every delivery is kept; a direct send still is per socket."""
    layer = make_layer()
    sockets = [layer.new_channel("test.burst!") for _ in range(120)]
    for socket in sockets:
        layer.group_add("test-burst", socket)
    for number in range(150):
        layer.send_group("test-burst", {"n": number})
    received = []
    while batch := layer.receive_batch(["test.burst!"], 5000):
        received.extend(batch)
    assert len(received) == 120 * 150
    per_socket = {socket: [] for socket in sockets}
    for channel, message in received:
        per_socket[channel].append(message["n"])
    assert all(numbers == list(range(150)) for numbers in per_socket.values())
    for _ in range(100):
        layer.send(sockets[0], {"direct": True})
    with pytest.raises(layer.ChannelFull):
        layer.send(sockets[0], {"direct": True})


def test_group_send_applies_per_pattern_capacity_to_each_member(make_layer):
    layer = make_layer(capacity=5, channel_capacity={"test.small*": 1})
    socket = layer.new_channel("test.small.server!")
    for member in ("test.small.one", socket, "test.big"):
        layer.group_add("test-group", member)
    layer.send_group("test-group", {"n": 1})
    layer.send_group("test-group", {"n": 2})  # the small members are full now
    assert layer.receive_batch(["test.small.one"], 10) == [("test.small.one", {"n": 1})]
    assert layer.receive_batch(["test.small.server!"], 10) == [(socket, {"n": 1})]
    assert [m["n"] for _, m in layer.receive_batch(["test.big"], 10)] == [1, 2]


def test_group_discard_removes_a_member(layer):
    layer.group_add("test-group", "test.a")
    layer.group_add("test-group", "test.b")
    layer.group_discard("test-group", "test.a")
    layer.group_discard("test-group", "test.never-added")  # no-op
    layer.send_group("test-group", {})
    assert layer.group_channels("test-group") == ["test.b"]
    assert layer.receive(["test.a"]) == (None, None)
    assert layer.receive(["test.b"]) == ("test.b", {})


def test_group_membership_expires_after_group_expiry(make_layer):
    layer = make_layer(group_expiry=1)
    layer.group_add("test-group", "test.old")
    time.sleep(0.8)
    layer.group_add("test-group", "test.new")
    time.sleep(0.3)  # test.old is now over 1.1 s old, test.new about 0.3 s
    assert layer.group_channels("test-group") == ["test.new"]
    layer.send_group("test-group", {})
    assert layer.receive(["test.old"]) == (None, None)


def test_group_send_to_an_empty_group_does_nothing(layer):
    layer.send_group("test-nobody", {"x": 1})
    assert layer.group_channels("test-nobody") == []


# -- expiry and size ----------


def test_messages_expire_unread(make_layer):
    layer = make_layer(expiry=1, capacity=2)
    layer.send("test.expire", {"old": True})
    layer.send("test.expire", {"old": True})
    socket = layer.new_channel("test.server!")
    layer.send(socket, {"old": True})
    layer.send(socket, {"old": True})
    with pytest.raises(ChannelFull):
        layer.send(socket, {"old": True})
    time.sleep(1.1)
    layer.send("test.expire", {"old": False})  # room again: expired messages take none
    layer.send(socket, {"old": False})
    assert sorted(layer.receive_batch(["test.expire", "test.server!"], 10)) == [
        ("test.expire", {"old": False}), (socket, {"old": False})]
    assert layer.channel_statistics(socket)["messages_pending"] == 0


def test_a_one_megabyte_message_is_accepted(layer):
    body = bytes(range(256)) * 4096
    layer.send("test.large", {"body": body, "more": "x" * 1000})
    assert layer.receive(["test.large"]) == ("test.large", {"body": body, "more": "x" * 1000})


def test_an_oversize_message_is_refused_and_nothing_is_written(layer):
    with pytest.raises(MessageTooLarge):
        layer.send("test.huge", {"body": b"x" * (3 * 1024 * 1024)})
    layer.group_add("test-group", "test.huge")
    with pytest.raises(MessageTooLarge):
        layer.send_group("test-group", {"body": b"x" * (3 * 1024 * 1024)})
    assert layer.receive(["test.huge"]) == (None, None)
    assert layer.channel_statistics("test.huge")["messages_count"] == 0


# -- flush and statistics ----------


def test_flush_empties_messages_and_groups_of_this_layer_only(make_layer, backend):
    layer = make_layer()
    other = make_layer(prefix="other-" + getattr(layer, "prefix", "x")) \
        if backend != "inmemory" else make_layer()
    layer.send("test.flush", {})
    layer.group_add("test-group", "test.flush")
    other.send("test.flush", {"kept": True})
    layer.flush()
    assert layer.receive(["test.flush"]) == (None, None)
    assert layer.group_channels("test-group") == []
    assert other.receive(["test.flush"]) == ("test.flush", {"kept": True})


def test_statistics_count_messages_pending_and_full(make_layer):
    layer = make_layer(capacity=2)
    layer.send("test.stats", {})
    layer.send("test.stats", {})
    with pytest.raises(ChannelFull):
        layer.send("test.stats", {})
    layer.receive(["test.stats"])
    stats = layer.channel_statistics("test.stats")
    assert stats["messages_count"] == 2
    assert stats["channel_full_count"] == 1
    assert stats["messages_pending"] == 1
    assert 0 <= stats["messages_max_age"] < 5
    totals = layer.global_statistics()
    assert totals["messages_count"] == 2 and totals["channel_full_count"] == 1
    socket = layer.new_channel("test.server!")
    layer.send(socket, {})
    assert layer.channel_statistics(socket)["messages_pending"] == 1
    assert layer.channel_statistics("test.server!")["messages_pending"] == 1


# -- fairness and concurrency ----------


def test_a_busy_channel_does_not_starve_a_quiet_one(layer):
    for index in range(60):
        layer.send("test.busy", {"n": index})
    layer.send("test.quiet", {"n": -1})
    seen = [layer.receive(["test.busy", "test.quiet"])[0] for _ in range(30)]
    assert "test.quiet" in seen


def test_concurrent_senders_and_receivers_deliver_each_message_exactly_once(make_layer):
    layer = make_layer(capacity=10_000, blocking_timeout=0.2)
    senders, per_sender, receivers = 4, 150, 4
    total = senders * per_sender
    received: list[tuple[str, int]] = []
    lock = threading.Lock()
    done = threading.Event()
    errors: list[BaseException] = []

    def send(sender: int) -> None:
        try:
            for index in range(per_sender):
                channel = "test.conc.a" if index % 2 else "test.conc.b"
                layer.send(channel, {"id": f"{sender}-{index}"})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def receive() -> None:
        try:
            while not done.is_set():
                for channel, message in layer.receive_batch(["test.conc.a", "test.conc.b"], 7,
                                                            block=True):
                    with lock:
                        received.append((channel, message["id"]))
                        if len(received) >= total:
                            done.set()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
            done.set()

    threads = [threading.Thread(target=receive) for _ in range(receivers)]
    threads += [threading.Thread(target=send, args=(n,)) for n in range(senders)]
    for thread in threads:
        thread.start()
    done.wait(15)
    done.set()
    for thread in threads:
        thread.join(5)
    assert not errors
    ids = Counter(message_id for _, message_id in received)
    assert len(ids) == total, f"lost {total - len(ids)} messages"
    assert max(ids.values()) == 1, "a message was delivered twice"
    assert layer.receive(["test.conc.a", "test.conc.b"]) == (None, None)


# -- asyncio extension ----------


def test_async_receive_wakes_when_another_thread_sends(make_layer):
    layer = make_layer(blocking_timeout=5)

    async def scenario() -> tuple[Any, float]:
        started = time.monotonic()
        with sent_soon(layer, "test.async", {"a": 1}):
            return await layer.receive_async(["test.async"]), time.monotonic() - started

    result, elapsed = run_async(layer, scenario)
    assert result == ("test.async", {"a": 1})
    assert elapsed < 1


def test_async_receive_returns_none_after_its_bound(make_layer):
    layer = make_layer(blocking_timeout=0.3)

    async def scenario() -> tuple[Any, list, float]:
        started = time.monotonic()
        single = await layer.receive_async(["test.none"])
        batch = await layer.receive_batch_async(["test.none"], 5)
        return single, batch, time.monotonic() - started

    single, batch, elapsed = run_async(layer, scenario)
    assert single == (None, None) and batch == []
    assert 0.5 <= elapsed < 2.5


def test_async_api_sends_groups_and_batches(layer):
    async def scenario() -> list:
        reply = await layer.new_channel_async("test.server!")
        await layer.group_add_async("test-async", reply)
        await layer.group_add_async("test-async", "test.gone")
        await layer.group_discard_async("test-async", "test.gone")
        await layer.send_async(reply, {"direct": True})
        await layer.send_group_async("test-async", {"group": True})
        return reply, await layer.receive_batch_async(["test.server!"], 10)

    reply, batch = run_async(layer, scenario)
    assert batch == [(reply, {"direct": True}), (reply, {"group": True})]
    assert layer.receive(["test.gone"]) == (None, None)


def test_async_send_raises_channel_full(make_layer):
    layer = make_layer(capacity=1)

    async def scenario() -> None:
        await layer.send_async("test.afull", {})
        with pytest.raises(ChannelFull):
            await layer.send_async("test.afull", {})

    run_async(layer, scenario)


def test_async_receive_over_two_shards_is_not_stalled(make_layer):
    layer = make_layer(blocking_timeout=2)
    first, second = names_on_two_shards(layer)

    async def scenario() -> list[float]:
        timings = []
        for target in (first, second):
            started = time.monotonic()
            with sent_soon(layer, target, {"to": target}):
                assert await layer.receive_async([first, second]) == (target, {"to": target})
                timings.append(time.monotonic() - started)
        return timings

    assert max(run_async(layer, scenario)) < 1.5


def test_one_layer_serves_several_event_loops_at_once(make_layer):
    layer = make_layer(blocking_timeout=5)
    results: dict[int, Any] = {}

    def loop_thread(number: int) -> None:
        async def scenario() -> Any:
            await layer.send_async(f"test.loop{number}", {"from": number})
            return await layer.receive_async([f"test.loop{1 - number}"])

        results[number] = run_async(layer, scenario)

    threads = [threading.Thread(target=loop_thread, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == {0: ("test.loop1", {"from": 1}), 1: ("test.loop0", {"from": 0})}


def test_a_message_taken_for_a_caller_that_left_is_not_lost(make_layer):
    layer = make_layer(blocking_timeout=0.5)
    first, second = names_on_two_shards(layer)
    layer.send(first, {"n": 1})
    assert layer.receive([first, second], block=True) == (first, {"n": 1})
    assert layer.receive([first, second], block=True) == (None, None)
    layer.send(second, {"n": 2})  # may be taken by a pop still waiting for the last caller
    layer.close()
    reader = make_layer(prefix=getattr(layer, "prefix", None)) if hasattr(layer, "prefix") \
        else layer
    assert reader.receive([second], block=True) == (second, {"n": 2})


def test_a_cancelled_async_receive_loses_no_message(make_layer):
    layer = make_layer(blocking_timeout=1)

    async def scenario() -> Any:
        waiting = asyncio.ensure_future(layer.receive_async(["test.cancel"]))
        await asyncio.sleep(0.1)  # let it block
        waiting.cancel()
        await layer.send_async("test.cancel", {"kept": True})
        return await layer.receive_async(["test.cancel"])

    assert run_async(layer, scenario) == ("test.cancel", {"kept": True})


def test_close_async_hands_back_what_a_cancelled_receive_took(make_layer, backend):
    layer = make_layer(blocking_timeout=1)
    reader = make_layer(prefix=layer.prefix) if backend != "inmemory" else layer

    async def scenario() -> None:
        waiting = asyncio.ensure_future(layer.receive_async(["test.cancel"]))
        await asyncio.sleep(0.1)
        waiting.cancel()
        await layer.send_async("test.cancel", {"kept": True})

    run_async(layer, scenario)  # ends with close_async()
    assert reader.receive(["test.cancel"], block=True) == ("test.cancel", {"kept": True})
