"""Second-look tests of the Redis layer: faults in the windows between two commands, counters
that could drift, keys that could outlive their use, and receives that are cancelled mid-reply.

Each test here failed against the layer as first written (or pins a behaviour a fix relies on).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from channels.layers.base import ChannelFull
from channels.layers.redis import RedisChannelLayer
from tests.layers.fault_proxy import FaultProxy
from tests.redis_counting import CountingAsyncConnection


@pytest.fixture
def proxy(redis_url: str) -> Iterator[FaultProxy]:
    fault_proxy = FaultProxy(redis_url)
    yield fault_proxy
    fault_proxy.close()


def shard_names(layer: RedisChannelLayer, pattern: str) -> dict[int, str]:
    """One name per shard made from ``pattern`` (formatted with an index)."""
    found: dict[int, str] = {}
    for index in range(1000):
        name = pattern.format(index)
        found.setdefault(layer._shard_of(name), name)
        if len(found) == layer.ring_size:
            return found
    raise AssertionError("no name found for every shard")


async def pops_ended(layer: RedisChannelLayer) -> None:
    """Wait for blocking pops an earlier receive left in flight (they end within its bound)."""
    pending = list(layer._loop_state().inflight.values())
    if pending:
        await asyncio.wait(pending, timeout=5)


# -- capacity counters of process-specific channels ------------------------------------------


def test_a_reader_that_died_between_its_pop_and_its_count_update_leaves_no_socket_full(
        redis_layers, redis_client, unique_prefix):
    # A blocking pop and its count update are two commands: a reader killed between them
    # (simulated by popping the raw list) must not leave the socket counted full for ever.
    layer = redis_layers(capacity=1)
    layer.send("hard.srv!a", {"n": 1})
    assert redis_client.lpop(unique_prefix + "hard.srv!") is not None
    layer.send("hard.srv!a", {"n": 2})  # ChannelFull here was the bug
    assert layer.receive(["hard.srv!"]) == ("hard.srv!a", {"n": 2})


def test_socket_counts_resynchronise_when_the_process_queue_drains(redis_layers, redis_client,
                                                                   unique_prefix):
    layer = redis_layers(capacity=2)
    layer.send("hard.srv!a", {"n": 1})
    layer.send("hard.srv!a", {"n": 2})
    # A lost count update: the count says 2, one is queued.
    redis_client.lpop(unique_prefix + "hard.srv!")
    assert layer.receive_batch(["hard.srv!"], 10) == [("hard.srv!a", {"n": 2})]
    layer.send("hard.srv!a", {"n": 3})
    layer.send("hard.srv!a", {"n": 4})
    with pytest.raises(ChannelFull):  # the bound itself still holds
        layer.send("hard.srv!a", {"n": 5})
    assert [m["n"] for _, m in layer.receive_batch(["hard.srv!"], 10)] == [3, 4]
    assert redis_client.exists(unique_prefix + "#c:hard.srv!") == 0


def test_expired_unread_socket_messages_free_their_capacity(redis_layers):
    layer = redis_layers(capacity=2, expiry=0.3)
    layer.send("hard.srv!a", {"n": 1})
    layer.send("hard.srv!a", {"n": 2})
    layer.send("hard.srv!b", {"n": 3})
    time.sleep(0.4)  # the behaviour under test is time passing
    layer.send("hard.srv!a", {"n": 4})
    layer.send("hard.srv!a", {"n": 5})
    assert layer.receive_batch(["hard.srv!"], 10) == [("hard.srv!a", {"n": 4}),
                                                     ("hard.srv!a", {"n": 5})]


def test_a_count_update_lost_with_the_connection_loses_no_message(redis_layers, proxy):
    # The blocking pop succeeds, then the connection dies before the count update reaches
    # Redis: the entry has left Redis, so the receive must still hand it over.
    reader = redis_layers(hosts=[proxy.url], capacity=1, blocking_timeout=3)
    sender = redis_layers(capacity=1)
    assert reader.receive(["hard.srv!"]) == (None, None)  # warm connection, scripts loaded
    result: dict[str, Any] = {}

    def receive() -> None:
        try:
            result["got"] = reader.receive(["hard.srv!"], block=True)
        except Exception as exc:  # noqa: BLE001 - asserted below
            result["error"] = exc

    proxy.hold_reply_after(b"BLMPOP")
    thread = threading.Thread(target=receive)
    thread.start()
    assert proxy.seen.wait(5), "the reader never blocked"
    proxy.cut_before(b"EVALSHA")  # the count update after the pop
    proxy.release()
    sender.send("hard.srv!a", {"n": 1})
    thread.join(10)
    assert result == {"got": ("hard.srv!a", {"n": 1})}
    # The count the lost update left behind heals once the queue is seen empty.
    assert reader.receive(["hard.srv!"]) == (None, None)
    sender.send("hard.srv!a", {"n": 2})
    assert reader.receive(["hard.srv!"]) == ("hard.srv!a", {"n": 2})


# -- cancellation ---------------------------------------------------------------------------


@pytest.mark.parametrize(("channel", "queue", "command", "idle"), [
    # After an empty receive the next goes straight to the blocking pop (idle channels) ...
    ("hard.cancel", "hard.cancel", b"BLMPOP", True),
    ("hard.srv!x", "hard.srv!", b"BLMPOP", True),
    # ... otherwise it tries a non-blocking pop first (LMPOP, or the script for a process).
    ("hard.cancel", "hard.cancel", b"LMPOP", False),
    ("hard.srv!x", "hard.srv!", b"EVALSHA", False),
])
def test_an_async_receive_cancelled_while_its_pop_reply_is_in_flight_loses_nothing(
        redis_layers, proxy, channel, queue, command, idle):
    reader = redis_layers(hosts=[proxy.url], blocking_timeout=1)
    sender = redis_layers()

    async def scenario() -> Any:
        assert await reader.receive_batch_async([queue], 10) == []  # warm up
        # Let the warm-up's blocking pop end, so that only the pop under test meets the message.
        await pops_ended(reader)
        if not idle:
            reader._loop_state().idle.clear()
        sender.send(channel, {"kept": True})
        proxy.hold_reply_after(command)
        task = asyncio.ensure_future(reader.receive_batch_async([queue], 10))
        seen = await asyncio.get_running_loop().run_in_executor(None, proxy.seen.wait, 5)
        assert seen, "the pop never reached Redis"
        task.cancel()
        await asyncio.wait([task], timeout=5)
        proxy.release()
        started = time.monotonic()
        got = await reader.receive_batch_async([queue], 10)
        return got, time.monotonic() - started

    async def main() -> Any:
        try:
            return await scenario()
        finally:
            await reader.close_async()

    got, took = asyncio.run(main())
    assert got == [(channel, {"kept": True})]
    assert took < 0.5, "the message waited for a blocking pop to time out"


def test_an_idle_async_receive_hands_replies_out_before_their_count_update(
        redis_layers, proxy, redis_client, unique_prefix):
    # A server's replies trickle in: each goes straight to a blocking pop and is handed out
    # while the per-socket count update is still on its way (held here by the proxy).
    reader = redis_layers(hosts=[proxy.url], blocking_timeout=2)
    sender = redis_layers()

    async def scenario() -> Any:
        assert await reader.receive_batch_async(["hard.srv!"], 10) == []  # now idle
        await pops_ended(reader)
        proxy.hold_reply_after(b"EVALSHA")  # the count update after the blocking pop
        task = asyncio.ensure_future(reader.receive_batch_async(["hard.srv!"], 10))
        await asyncio.sleep(0)
        sender.send("hard.srv!a", {"n": 1})
        # Would time out if the receive waited for the count update's (held) reply.
        got = await asyncio.wait_for(task, 5)
        held = await asyncio.get_running_loop().run_in_executor(None, proxy.seen.wait, 5)
        proxy.release()
        await reader.close_async()  # waits for the count update
        return got, held

    got, held = asyncio.run(main_with(scenario))
    assert got == [("hard.srv!a", {"n": 1})]
    assert held, "the count update was never sent"
    assert not redis_client.exists(unique_prefix + "#c:hard.srv!"), "a count was left behind"


def test_trickling_async_replies_keep_socket_counts_exact(redis_layers, redis_client,
                                                          unique_prefix):
    reader = redis_layers(blocking_timeout=2)
    sender = redis_layers(capacity=2)

    async def scenario() -> list:
        got = []
        for index in range(30):
            sender.send("hard.srv!a", {"n": index})  # refused if counts drifted upwards
            got += await reader.receive_batch_async(["hard.srv!"], 10)
        await reader.close_async()
        return got

    got = asyncio.run(scenario())
    assert [message["n"] for _, message in got] == list(range(30))
    assert not redis_client.exists(unique_prefix + "#c:hard.srv!")
    assert sender.send("hard.srv!a", {"n": 30}) is None
    assert redis_client.hget(unique_prefix + "#c:hard.srv!", "hard.srv!a") == b"1"


def test_count_updates_ride_along_with_the_next_pop(redis_layers, redis_client, redis_url,
                                                    unique_prefix):
    # Each trickled reply owes a count update; it goes out in the same write as the next
    # blocking pop, so a server's reply loop costs one round trip per reply, not two.
    sender = redis_layers(capacity=2)  # the fixture flushes the prefix with this one
    # Async use only: its sync clients would carry the asyncio connection class too.
    reader = RedisChannelLayer(hosts=[redis_url], prefix=unique_prefix, blocking_timeout=2,
                               connection_kwargs={"connection_class": CountingAsyncConnection})

    async def scenario() -> tuple[list, int]:
        assert await reader.receive_batch_async(["hard.srv!"], 10) == []  # now idle
        await pops_ended(reader)
        got = []
        writes = CountingAsyncConnection.writes
        for index in range(20):
            task = asyncio.ensure_future(reader.receive_batch_async(["hard.srv!"], 10))
            await asyncio.sleep(0)  # the pop is on its way
            sender.send("hard.srv!a", {"n": index})  # refused if counts drifted upwards
            got += await asyncio.wait_for(task, 5)
        await reader.close_async()  # sends what is still owed
        return got, CountingAsyncConnection.writes - writes

    got, used = asyncio.run(scenario())
    assert [message["n"] for _, message in got] == list(range(20))
    # 20 pops, each but the first carrying the last one's update, and the last update: 21
    # (the timer may send one alone when the machine is slow; 40 if none rode along).
    assert used <= 25, f"{used} writes for 20 replies"
    assert not redis_client.exists(unique_prefix + "#c:hard.srv!"), "a count was left behind"


def test_an_idle_reader_still_sends_the_count_updates_it_owes(redis_layers, redis_client,
                                                              unique_prefix):
    # No further receive comes to carry the update: a timer sends it (UNCOUNT_DELAY), so a
    # socket with capacity 1 is not left looking full.
    reader = redis_layers(blocking_timeout=2)
    sender = redis_layers(capacity=1)
    counts = unique_prefix + "#c:hard.srv!"

    async def scenario() -> tuple[list, float]:
        assert await reader.receive_batch_async(["hard.srv!"], 10) == []  # now idle
        await pops_ended(reader)
        task = asyncio.ensure_future(reader.receive_batch_async(["hard.srv!"], 10))
        await asyncio.sleep(0)
        sender.send("hard.srv!a", {"n": 1})
        got = await asyncio.wait_for(task, 5)
        started = time.monotonic()
        while redis_client.exists(counts) and time.monotonic() - started < 5:
            await asyncio.sleep(0.005)  # the timer needs this loop running; nothing to await
        waited = time.monotonic() - started
        await reader.close_async()
        return got, waited

    got, waited = asyncio.run(scenario())
    assert got == [("hard.srv!a", {"n": 1})]
    assert not redis_client.exists(counts), "the owed count update was never sent"
    assert waited < 2, f"count update sent only after {waited:.2f}s"
    sender.send("hard.srv!a", {"n": 2})  # capacity 1: refused if the count were still 1


async def main_with(scenario: Any) -> Any:
    return await scenario()


def test_a_receive_cancelled_mid_reply_is_handed_back_by_close_async(redis_layers, proxy):
    reader = redis_layers(hosts=[proxy.url], blocking_timeout=1)
    sender = redis_layers()

    async def scenario() -> None:
        await reader.receive_batch_async(["hard.cancel"], 10)
        await pops_ended(reader)
        sender.send("hard.cancel", {"kept": True})
        proxy.hold_reply_after(b"LMPOP")
        task = asyncio.ensure_future(reader.receive_batch_async(["hard.cancel"], 10))
        await asyncio.get_running_loop().run_in_executor(None, proxy.seen.wait, 5)
        task.cancel()
        await asyncio.wait([task], timeout=5)
        proxy.release()
        await reader.close_async()

    asyncio.run(scenario())
    assert sender.receive(["hard.cancel"]) == ("hard.cancel", {"kept": True})


# -- keys and expiry ------------------------------------------------------------------------


def test_every_key_a_workload_leaves_has_a_ttl(redis_layers, redis_client, unique_prefix):
    layer = redis_layers(expiry=5)
    reply = layer.new_channel("hard.reply?")
    layer.send(reply, {"n": 1})
    layer.send("hard.normal", {"n": 2})
    layer.send("hard.srv!a", {"n": 3})
    layer.group_add("hard.group", "hard.srv!a")
    layer.send_group("hard.group", {"n": 4})
    layer.send("hard.full", {"n": 5})
    assert layer.receive([reply]) == (reply, {"n": 1})
    assert layer.receive_batch(["hard.srv!"], 1) == [("hard.srv!a", {"n": 3})]
    keys = {key.decode(): redis_client.ttl(key)
            for key in redis_client.scan_iter(match=unique_prefix + "*")}
    assert keys
    # The shard-wide statistics hash is one key per prefix, kept until flush().
    keys.pop(unique_prefix + "#s", None)
    assert all(ttl > 0 for ttl in keys.values()), keys
    # A single-reader channel is used once: its statistics must not outlive its messages by an
    # hour (one key per request body would pile up: daphne#124).
    assert keys[unique_prefix + "#s:" + reply] <= 6


def test_entries_handed_back_by_close_keep_a_ttl(redis_layers, redis_client, redis_url,
                                                 second_redis_url, unique_prefix):
    layer = redis_layers(hosts=[redis_url, second_redis_url], blocking_timeout=2, expiry=30)
    names = shard_names(layer, "hard.stash.{}")
    first, second = names[0], names[1]
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        waiting = pool.submit(layer.receive, [first, second], True)
        while not layer._inflight and not waiting.done():
            time.sleep(0.01)  # until both shards' pops are in flight (bounded by the receive)
        layer.send(first, {"n": 1})
        assert waiting.result(5) == (first, {"n": 1})
        layer.send(second, {"n": 2})  # taken by the pop still waiting on the other shard
        concurrent.futures.wait(list(layer._inflight.values()), timeout=5)
    finally:
        pool.shutdown()
    assert layer._stash, "the second pop did not take the message"
    layer.close()
    holder = (redis_client if layer._shard_of(second) == 0
              else redis.Redis.from_url(second_redis_url))
    try:
        ttl = holder.ttl(unique_prefix + second)
    finally:
        if holder is not redis_client:
            holder.close()
    assert 0 < ttl <= 31, f"handed-back queue has TTL {ttl}"
    reader = redis_layers(hosts=[redis_url, second_redis_url])
    assert reader.receive([second]) == (second, {"n": 2})


def test_an_unreadable_entry_is_dropped_without_breaking_the_receive(redis_layers, redis_client,
                                                                     unique_prefix):
    layer = redis_layers()
    redis_client.rpush(unique_prefix + "hard.garbage", b"not an entry of ours")
    redis_client.rpush(unique_prefix + "hard.garbage", b"")
    layer.send("hard.garbage", {"n": 1})
    assert layer.receive(["hard.garbage"]) == ("hard.garbage", {"n": 1})


def test_a_wrong_key_drops_the_message_and_the_receive_loop_goes_on(redis_layers, caplog):
    sender = redis_layers(symmetric_encryption_keys=["right"])
    stranger = redis_layers(symmetric_encryption_keys=["wrong"])
    sender.send("hard.secret", {"n": 1})
    with caplog.at_level("ERROR", logger="channels.layers"):
        assert stranger.receive(["hard.secret"]) == (None, None)
    assert "none of symmetric_encryption_keys decrypts" in caplog.text
    assert "hard.secret" in caplog.text
    stranger.send("hard.secret", {"n": 2})
    assert stranger.receive(["hard.secret"]) == ("hard.secret", {"n": 2})


# -- sharding -------------------------------------------------------------------------------


def test_new_channel_names_and_process_prefixes_stay_on_one_shard(redis_layers, redis_url,
                                                                  second_redis_url):
    layer = redis_layers(hosts=[redis_url, second_redis_url])
    other = redis_layers(hosts=[redis_url, second_redis_url], prefix="another:")
    for _ in range(20):
        name = layer.new_channel("hard.reply?")
        assert layer._shard_of(name) == other._shard_of(name)  # same name, same shard
        layer.send(name, {"to": name})
        assert layer.receive([name]) == (name, {"to": name})
    assert len({layer._shard_of(f"hard.srv!{n}") for n in range(50)}) == 1


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_receive_over_shards_wakes_promptly_for_any_shard(redis_layers, redis_url,
                                                            second_redis_url, api):
    layer = redis_layers(hosts=[redis_url, second_redis_url], blocking_timeout=2)
    sender = redis_layers(hosts=[redis_url, second_redis_url])
    names = shard_names(layer, "hard.wake.{}")
    channels = [names[0], names[1]]
    targets = channels * 2

    def send_later(target: str, sent_at: list[float]) -> threading.Thread:
        def send() -> None:
            time.sleep(0.15)  # let the receive block first: its wake-up is what is measured
            sent_at.append(time.monotonic())
            sender.send(target, {"to": target})

        thread = threading.Thread(target=send)
        thread.start()
        return thread

    def measure(receive: Any) -> list[float]:
        latencies = []
        for target in targets:
            sent_at: list[float] = []
            thread = send_later(target, sent_at)
            got = receive()
            received_at = time.monotonic()
            thread.join(5)
            assert got == (target, {"to": target})
            latencies.append(received_at - sent_at[0])
        return latencies

    if api == "sync":
        latencies = measure(lambda: layer.receive(channels, block=True))
    else:
        async def main() -> list[float]:
            loop = asyncio.get_running_loop()
            latencies = []
            try:
                for target in targets:
                    sent_at: list[float] = []
                    thread = send_later(target, sent_at)
                    got = await layer.receive_async(channels)
                    received_at = loop.time()
                    await loop.run_in_executor(None, thread.join, 5)
                    assert got == (target, {"to": target})
                    latencies.append(received_at - sent_at[0])
            finally:
                await layer.close_async()
            return latencies

        latencies = asyncio.run(main())
    assert max(latencies) < 0.3, f"latencies {latencies}: a shard waited for another"


# -- groups ---------------------------------------------------------------------------------


def test_group_send_reaches_members_of_many_processes_on_every_shard_once(
        redis_layers, redis_url, second_redis_url):
    layer = redis_layers(hosts=[redis_url, second_redis_url])
    prefixes = list(shard_names(layer, "hard.server{}!").values())
    prefixes += [p.replace("!", "x!") for p in prefixes]
    members = [f"{prefix}{socket}" for prefix in prefixes for socket in ("a", "b", "c")]
    members += list(shard_names(layer, "hard.plain{}").values())
    assert {layer._shard_of(m) for m in members} == {0, 1}
    for member in members:
        layer.group_add("hard.room", member)
    for n in range(3):
        layer.send_group("hard.room", {"n": n})
    got: Counter = Counter()
    for queue in {m if "!" not in m else m[:m.index("!") + 1] for m in members}:
        for channel, message in layer.receive_batch([queue], 100):
            got[(channel, message["n"])] += 1
    assert got == Counter({(m, n): 1 for m in members for n in range(3)})


def test_group_add_refreshes_membership_before_it_lapses(redis_layers):
    layer = redis_layers(group_expiry=1)
    layer.group_add("hard.refresh", "hard.member")
    time.sleep(0.6)  # the behaviour under test is time passing
    layer.group_add("hard.refresh", "hard.member")
    time.sleep(0.6)
    assert layer.group_channels("hard.refresh") == ["hard.member"]
    layer.send_group("hard.refresh", {"n": 1})
    assert layer.receive(["hard.member"]) == ("hard.member", {"n": 1})


# -- exactly once under concurrency and cancellation -------------------------------------------


def test_sync_and_cancelled_async_batch_receivers_on_two_shards_deliver_exactly_once(
        redis_layers, redis_url, second_redis_url):
    hosts = [redis_url, second_redis_url]
    layer = redis_layers(hosts=hosts, capacity=10_000, blocking_timeout=0.3)
    names = shard_names(layer, "hard.conc.{}")
    prefixes = shard_names(layer, "hard.proc{}!")
    channels = [names[0], names[1]]
    sockets = [prefixes[0] + "s", prefixes[1] + "s"]
    queues = channels + [prefixes[0], prefixes[1]]
    total = 800
    received: list[str] = []
    lock = threading.Lock()
    done = threading.Event()
    errors: list[BaseException] = []

    def record(batch: list) -> None:
        with lock:
            received.extend(message["id"] for _, message in batch)
            if len(received) >= total:
                done.set()

    def send() -> None:
        try:
            targets = channels + sockets
            for index in range(total):
                layer.send(targets[index % 4], {"id": str(index)})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def sync_receiver() -> None:
        try:
            while not done.is_set():
                record(layer.receive_batch(queues, 5, block=True))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
            done.set()

    def async_receiver() -> None:
        async def main() -> None:
            timeouts = [0.001, 0.01, 0.05, 0.2]
            turn = 0
            try:
                while not done.is_set():
                    turn += 1
                    try:
                        # wait_for cancels the receive mid-pop more often than not.
                        record(await asyncio.wait_for(
                            layer.receive_batch_async(queues, 7), timeouts[turn % 4]))
                    except TimeoutError:
                        pass
            finally:
                await layer.close_async()
                # What cancelled receives took and close_async handed back is read by others.

        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
            done.set()

    threads = [threading.Thread(target=sync_receiver) for _ in range(2)]
    threads += [threading.Thread(target=async_receiver) for _ in range(2)]
    threads.append(threading.Thread(target=send))
    for thread in threads:
        thread.start()
    done.wait(15)
    done.set()
    for thread in threads:
        thread.join(10)
    # Whatever a receiver still held when everyone stopped went back to Redis on close.
    layer.close()
    record(layer.receive_batch(queues, total))
    assert not errors, errors
    ids = Counter(received)
    assert len(ids) == total, f"lost {total - len(ids)} messages"
    assert max(ids.values()) == 1, "a message was delivered twice"


# -- the in-memory layer --------------------------------------------------------------------


def test_inmemory_queues_nobody_reads_are_forgotten_once_expired():
    from channels.layers.inmemory import InMemoryChannelLayer

    layer = InMemoryChannelLayer(expiry=0.2)
    for _ in range(500):
        layer.send(layer.new_channel("hard.body?"), {"chunk": b"x"})
    assert len(layer._queues) == 500
    time.sleep(0.3)  # the behaviour under test is time passing
    layer.send("hard.live", {"n": 1})
    assert list(layer._queues) == ["hard.live"]
    assert layer.receive(["hard.live"]) == ("hard.live", {"n": 1})


def test_inmemory_lapsed_groups_nobody_uses_are_forgotten():
    from channels.layers.inmemory import InMemoryChannelLayer

    layer = InMemoryChannelLayer(expiry=0.2, group_expiry=0.2)
    for index in range(100):
        layer.group_add(f"hard.room{index}", "hard.member")
    time.sleep(0.3)  # the behaviour under test is time passing
    layer.group_add("hard.kept", "hard.member")
    layer.send("hard.other", {"n": 1})
    assert list(layer._groups) == ["hard.kept"]


# -- faults mid-call ------------------------------------------------------------------------


def test_a_send_whose_reply_is_lost_raises_and_is_not_resent(redis_layers, proxy, redis_client,
                                                             unique_prefix):
    # The script ran, the reply never came: the caller must hear of it, and nothing may send
    # the message a second time behind its back (at most once).
    sender = redis_layers(hosts=[proxy.url])
    sender.send("hard.lost", {"n": 0})
    proxy.hold_reply_after(b"EVALSHA")
    result: dict[str, Any] = {}

    def send() -> None:
        try:
            sender.send("hard.lost", {"n": 1})
            result["sent"] = True
        except Exception as exc:  # noqa: BLE001 - asserted below
            result["error"] = exc

    thread = threading.Thread(target=send)
    thread.start()
    assert proxy.seen.wait(5)
    proxy.cut_all()
    proxy.release()
    thread.join(10)
    assert type(result.get("error")).__name__ == "RedisLayerUnavailable", result
    repr(result["error"])  # redis-py's repr reads attributes our subclass once lacked
    assert redis_client.llen(unique_prefix + "hard.lost") == 2  # the first message and one copy
    sender.send("hard.lost", {"n": 2})  # the same layer carries on
    assert [m["n"] for _, m in sender.receive_batch(["hard.lost"], 10)] == [0, 1, 2]


def test_scripts_unknown_to_the_server_are_loaded_again_on_every_path(redis_layers,
                                                                      second_redis_url):
    layer = redis_layers(hosts=[second_redis_url], blocking_timeout=0.5)
    admin = redis.Redis.from_url(second_redis_url)
    try:
        layer.send("hard.srv!a", {"n": 0})
        assert layer.receive(["hard.srv!"]) == ("hard.srv!a", {"n": 0})
        admin.script_flush()  # as after a restart: every script is unknown
        layer.group_add("hard.g", "hard.srv!a")
        layer.send_group("hard.g", {"n": 1})
        assert layer.receive_batch(["hard.srv!"], 5) == [("hard.srv!a", {"n": 1})]
        assert layer.group_channels("hard.g") == ["hard.srv!a"]
        admin.script_flush()
        timer = threading.Timer(0.1, layer.send, ("hard.srv!a", {"n": 2}))
        timer.start()  # arrives during the blocking pop, whose count update is a script too
        assert layer.receive(["hard.srv!"], block=True) == ("hard.srv!a", {"n": 2})
        timer.join(5)

        async def scenario() -> Any:
            admin.script_flush()
            await layer.send_async("hard.srv!a", {"n": 3})
            admin.script_flush()
            got = await layer.receive_batch_async(["hard.srv!"], 5)
            await layer.close_async()
            return got

        assert asyncio.run(scenario()) == [("hard.srv!a", {"n": 3})]
    finally:
        admin.close()


def test_many_threads_receiving_different_channels_over_shards_all_wake_promptly(
        redis_layers, redis_url, second_redis_url):
    layer = redis_layers(hosts=[redis_url, second_redis_url], blocking_timeout=2)
    readers = 12
    pairs = []
    for reader in range(readers):
        names = shard_names(layer, f"hard.many{reader}.{{}}")
        pairs.append([names[0], names[1]])
    latencies: dict[int, float] = {}
    blocked = threading.Barrier(readers + 1, timeout=5)

    def receive(reader: int) -> None:
        blocked.wait()
        got = layer.receive(pairs[reader], block=True)
        if got == (pairs[reader][1], {"n": reader}):
            latencies[reader] = time.monotonic()

    threads = [threading.Thread(target=receive, args=(n,)) for n in range(readers)]
    for thread in threads:
        thread.start()
    blocked.wait()
    time.sleep(0.2)  # let every reader block: their wake-up is what is measured
    sent_at = time.monotonic()
    for reader in range(readers):
        layer.send(pairs[reader][1], {"n": reader})
    for thread in threads:
        thread.join(5)
    assert len(latencies) == readers
    slowest = max(latencies.values()) - sent_at
    assert slowest < 0.5, f"a reader waited {slowest:.2f} s: its pop queued behind others"


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_message_another_callers_pop_took_wakes_this_receive_at_once(
        redis_layers, redis_url, second_redis_url, api):
    # A pop left waiting by an earlier receive (another thread, or the sync API while this
    # caller is async) may take the message this receive waits for: it lands in the stash,
    # and the waiting receive must hear of it at once, not after its own pop times out.
    layer = redis_layers(hosts=[redis_url, second_redis_url], blocking_timeout=2)
    sender = redis_layers(hosts=[redis_url, second_redis_url])
    names = shard_names(layer, "hard.steal.{}")
    first, second = names[0], names[1]
    twin = next(f"hard.steal.twin{n}" for n in range(1000)
                if layer._shard_of(f"hard.steal.twin{n}") == layer._shard_of(second))
    timer = threading.Timer(0.1, sender.send, (first, {"n": 1}))
    timer.start()
    assert layer.receive([first, second], block=True) == (first, {"n": 1})
    timer.join(5)
    # That receive's pop on the second shard still waits; now another receive waits on the
    # second channel through a pop of its own (different channels: not shared).
    sent_at: list[float] = []

    def send_soon() -> None:
        time.sleep(0.2)  # let the second receive block too
        sent_at.append(time.monotonic())
        sender.send(second, {"n": 2})

    thread = threading.Thread(target=send_soon)
    thread.start()
    if api == "sync":
        got = layer.receive([second, twin], block=True)
        received_at = time.monotonic()
    else:
        async def main() -> Any:
            try:
                return await layer.receive_async([second, twin]), time.monotonic()
            finally:
                await layer.close_async()

        got, received_at = asyncio.run(main())
    thread.join(5)
    assert got == (second, {"n": 2})
    assert received_at - sent_at[0] < 0.5, "the stashed message waited for a pop timeout"
