"""Redis-only behaviour: outages and restarts, options, encryption at rest, sharding."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
import redis

from channels.layers.base import LayerUnavailable
from channels.layers.redis import RedisChannelLayer, RedisLayerUnavailable
from channels.layers.redis.connections import LoopConnections
from tests.redis_server import RedisServer, redis_binary, start_server


@pytest.fixture
def private_redis():
    """A redis-server of this test's own, so it can be stopped (never the shared 6379)."""
    server = start_server(redis_binary()[0])
    holder = {"server": server}
    yield holder
    holder["server"].stop()


def restart(holder: dict, stopped: RedisServer) -> None:
    holder["server"] = start_server(redis_binary()[0], port=stopped.port)


def test_a_stopped_redis_gives_a_clear_error_and_the_same_layer_recovers(private_redis):
    server = private_redis["server"]
    layer = RedisChannelLayer(hosts=[server.url], prefix="faults:", blocking_timeout=0.3)
    try:
        layer.send("test.up", {"n": 1})
        assert layer.receive(["test.up"]) == ("test.up", {"n": 1})
        server.stop()
        for call in (lambda: layer.send("test.up", {"n": 2}),
                     lambda: layer.receive(["test.up"], block=True),
                     lambda: layer.group_add("g", "test.up"),
                     lambda: layer.send_group("g", {})):
            with pytest.raises(RedisLayerUnavailable, match=f"127.0.0.1:{server.port}") as err:
                call()
            assert isinstance(err.value, LayerUnavailable)
            assert isinstance(err.value, redis.exceptions.ConnectionError)
        restart(private_redis, server)
        # A new server knows none of the Lua scripts: they must be loaded again on the fly.
        layer.send("test.up", {"n": 3})
        assert layer.receive(["test.up"], block=True) == ("test.up", {"n": 3})
        layer.group_add("g", "test.up")
        layer.send_group("g", {"n": 4})
        assert layer.receive(["test.up"]) == ("test.up", {"n": 4})
    finally:
        layer.close()


def test_async_api_survives_a_restart_too(private_redis):
    server = private_redis["server"]
    layer = RedisChannelLayer(hosts=[server.url], prefix="faults:", blocking_timeout=0.3)

    async def scenario() -> None:
        await layer.send_async("test.up", {"n": 1})
        assert await layer.receive_async(["test.up"]) == ("test.up", {"n": 1})
        server.stop()
        with pytest.raises(RedisLayerUnavailable):
            await layer.send_async("test.up", {"n": 2})
        with pytest.raises(RedisLayerUnavailable):
            await layer.receive_async(["test.up"])
        restart(private_redis, server)
        await layer.send_async("test.up", {"n": 3})
        assert await layer.receive_async(["test.up"]) == ("test.up", {"n": 3})
        await layer.close_async()

    try:
        asyncio.run(scenario())
    finally:
        layer.close()


def test_a_redis_that_stops_answering_times_out_and_the_same_layer_recovers(private_redis):
    # A frozen server (SIGSTOP: the kernel still accepts and buffers, nothing answers) is what
    # a network partition or a stuck host looks like: each call fails within socket_timeout
    # with the layer's error instead of hanging, and the same layer works once it answers.
    # A call that went out on an open connection may have run (maybe_written: not to be
    # retried blindly); one that could not even connect wrote nothing.
    server = private_redis["server"]
    layer = RedisChannelLayer(hosts=[server.url], prefix="faults:", blocking_timeout=0.3,
                              connection_kwargs={"socket_timeout": 1.0})

    async def timed_out(call) -> RedisLayerUnavailable:
        started = time.monotonic()
        with pytest.raises(RedisLayerUnavailable, match="socket_timeout") as err:
            await call
        assert 0.9 <= time.monotonic() - started < 5
        return err.value

    async def frozen_async() -> None:
        # Two idle connections: the send and the pop below each take one that is open.
        await asyncio.gather(layer.send_async("test.frozen", {"n": 0}),
                             layer.send_async("test.frozen", {"n": 1}))
        server.process.send_signal(signal.SIGSTOP)
        try:
            sent = await timed_out(layer.send_async("test.frozen", {"n": 2}))
            assert sent.maybe_written
            popped = await timed_out(layer.receive_async(["test.frozen"]))
            assert popped.maybe_written
            # No open connection left: a new one hangs in its handshake, bounded too.
            connecting = await timed_out(layer.send_async("test.frozen", {"n": 3}))
            assert not connecting.maybe_written
        finally:
            server.process.send_signal(signal.SIGCONT)
        await layer.send_async("test.frozen", {"n": 4})
        received = await layer.receive_batch_async(["test.frozen"], 10)
        # {"n": 2} reached Redis's socket buffer and ran once it woke; the timed-out pop may
        # have taken the oldest entries with it (a pop's reply lost with its connection);
        # what was sent after the outage arrives, in order after whatever is left.
        numbers = [message["n"] for _, message in received]
        assert numbers[-1] == 4 and numbers == sorted(numbers) and 3 not in numbers
        await layer.close_async()

    try:
        asyncio.run(frozen_async())
        layer.send("test.frozen", {"n": 5})  # the sync connection is open before the freeze
        server.process.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(RedisLayerUnavailable) as err:
                layer.send("test.frozen", {"n": 6})
            assert 0.9 <= time.monotonic() - started < 5
            assert err.value.maybe_written
        finally:
            server.process.send_signal(signal.SIGCONT)
        layer.send("test.frozen", {"n": 7})
        numbers = [m["n"] for _, m in layer.receive_batch(["test.frozen"], 10)]
        assert numbers[-3:] == [5, 6, 7]
    finally:
        layer.flush()
        layer.close()


def test_commands_queued_behind_a_frozen_redis_fail_within_socket_timeout_too(private_redis,
                                                                             monkeypatch):
    # More sends than may be in flight at once: the ones waiting for a turn are bounded by the
    # same socket_timeout, so they all fail together, not in waves of max_active each taking
    # a full timeout; and those never sent say so (safe to retry).
    monkeypatch.setattr(LoopConnections, "max_active", 2)
    server = private_redis["server"]
    layer = RedisChannelLayer(hosts=[server.url], prefix="faults:", blocking_timeout=0.3,
                              connection_kwargs={"socket_timeout": 0.5})

    async def scenario() -> list:
        await layer.send_async("test.queued", {"n": -1})  # one open connection before
        server.process.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            results = await asyncio.gather(
                *(layer.send_async("test.queued", {"n": n}) for n in range(20)),
                return_exceptions=True)
            elapsed = time.monotonic() - started
        finally:
            server.process.send_signal(signal.SIGCONT)
        assert elapsed < 2.0, f"queued sends took {elapsed:.1f} s (waves of timeouts)"
        await layer.close_async()
        return results

    try:
        results = asyncio.run(scenario())
        assert all(isinstance(result, RedisLayerUnavailable) for result in results)
        # At most the two in flight may have been written; the other eighteen never were.
        assert sum(not result.maybe_written for result in results) >= 18
    finally:
        layer.flush()
        layer.close()


def test_messages_are_encrypted_at_rest_and_keys_rotate(redis_layers, redis_client,
                                                        unique_prefix):
    old = redis_layers(symmetric_encryption_keys=["old-secret"])
    rotated = redis_layers(symmetric_encryption_keys=["new-secret", "old-secret"])
    stranger = redis_layers(symmetric_encryption_keys=["other-secret"])
    old.send("test.secret", {"password": "hunter2"})
    stored = redis_client.lindex(unique_prefix + "test.secret", 0)
    assert b"hunter2" not in stored
    assert rotated.receive(["test.secret"]) == ("test.secret", {"password": "hunter2"})
    rotated.send("test.secret", {"password": "hunter3"})
    # A layer without the key drops what it cannot read rather than delivering garbage.
    assert stranger.receive(["test.secret"]) == (None, None)


@pytest.mark.parametrize(("options", "complaint"), [
    ({"hosts": "redis://127.0.0.1:6379/0"}, "hosts must be a non-empty list"),
    ({"hosts": [("127.0.0.1",)]}, "hosts entry"),
    ({"symmetric_encryption_keys": "one-key"}, "symmetric_encryption_keys"),
    ({"connection_kwargs": {"socket_timeout": 1}, "blocking_timeout": 2}, "socket_timeout"),
    ({"prefix": b"bytes"}, "prefix"),
])
def test_invalid_redis_options_are_refused(options, complaint):
    with pytest.raises((ValueError, TypeError), match=complaint):
        RedisChannelLayer(**options)


def test_socket_timeout_is_set_longer_than_the_blocking_pop():
    layer = RedisChannelLayer(hosts=[("127.0.0.1", 6379)], blocking_timeout=5)
    try:
        assert layer.connection_kwargs["socket_timeout"] > 5
        assert layer.hosts == ["redis://127.0.0.1:6379/0"]
    finally:
        layer.close()


def test_channels_and_groups_spread_over_shards_by_name(redis_url):
    layer = RedisChannelLayer(hosts=[redis_url, redis_url.replace("/0", "/1")])
    try:
        shards = {layer._shard_of(f"channel.{index}") for index in range(100)}
        assert shards == {0, 1}
        # Every channel of one process lives with its process prefix.
        assert len({layer._shard_of(f"server.abc!{index}") for index in range(100)}) == 1
        assert layer._shard_of("server.abc!") == layer._shard_of("server.abc!x")
    finally:
        layer.close()


def test_a_shard_that_is_down_affects_only_its_own_channels(redis_url, private_redis,
                                                            unique_prefix):
    server = private_redis["server"]
    layer = RedisChannelLayer(hosts=[redis_url, server.url], prefix=unique_prefix,
                              blocking_timeout=0.3)
    healthy = next(f"test.{i}" for i in range(1000) if layer._shard_of(f"test.{i}") == 0)
    broken = next(f"test.{i}" for i in range(1000) if layer._shard_of(f"test.{i}") == 1)
    try:
        server.stop()
        with pytest.raises(RedisLayerUnavailable):
            layer.send(broken, {})
        for index in range(3):
            layer.send(healthy, {"n": index})
        assert layer.receive([healthy, broken]) == (healthy, {"n": 0})
        assert layer.receive([broken, healthy], block=True) == (healthy, {"n": 1})

        async def scenario():
            result = await layer.receive_async([healthy, broken])
            empty = await layer.receive_async([healthy, broken])
            await layer.close_async()
            return result, empty

        assert asyncio.run(scenario()) == ((healthy, {"n": 2}), (None, None))
        with pytest.raises(RedisLayerUnavailable):
            layer.receive([broken])  # every shard it needs is down: the caller must know
        group = next(f"g{i}" for i in range(1000) if layer._shard_of(f"g{i}") == 0)
        layer.group_add(group, healthy)
        layer.group_add(group, broken)
        layer.send_group(group, {"group": True})  # the broken member misses it, nobody else
        assert layer.receive([healthy]) == (healthy, {"group": True})
    finally:
        layer.close()
        healthy_only = RedisChannelLayer(hosts=[redis_url], prefix=unique_prefix)
        healthy_only.flush()
        healthy_only.close()
