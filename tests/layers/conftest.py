"""Fixtures of the layer tests: one ``make_layer`` per backend configuration.

Every conformance test runs against four configurations: in-memory, Redis with one shard, Redis
with two shards (two real servers: the session Redis and a private one started here), and Redis
with encrypted messages; plus a fifth, Redis receiving the way it must before Redis 7.0.

The Redis-only tests build their layers with ``redis_layers`` and look at Redis itself through
``redis_client``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from channels.layers.inmemory import InMemoryChannelLayer
from channels.layers.redis import RedisChannelLayer
from tests.redis_server import RedisServer, RedisUnavailable, redis_binary, start_server

BACKENDS = ["inmemory", "redis", "redis-sharded", "redis-encrypted", "redis-lua-only"]


@pytest.fixture(scope="session")
def second_redis_url() -> Iterator[str]:
    """A private redis-server on a free port, so sharding spans two real servers."""
    try:
        server: RedisServer = start_server(redis_binary()[0])
    except RedisUnavailable as exc:
        pytest.fail(f"sharded layer tests need a second redis-server: {exc}", pytrace=False)
    yield server.url
    server.stop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_layer(backend: str, request: pytest.FixtureRequest,
               unique_prefix: str) -> Iterator[Callable[..., Any]]:
    """Build layers of the current backend (options override defaults); flushed and closed after."""
    made: list[Any] = []

    def factory(**options: Any) -> Any:
        if backend == "inmemory":
            layer = InMemoryChannelLayer(**options)
        else:
            redis_url = request.getfixturevalue("redis_url")
            hosts = [redis_url]
            if backend == "redis-sharded":
                hosts.append(request.getfixturevalue("second_redis_url"))
            if backend == "redis-encrypted":
                options.setdefault("symmetric_encryption_keys", ["test-key-one", "test-key-old"])
            options.setdefault("prefix", unique_prefix)
            layer = RedisChannelLayer(hosts=hosts, **options)
            if backend == "redis-lua-only":
                # As on Redis before 7.0 (no LMPOP/BLMPOP): every pop goes through Lua/BLPOP.
                layer._native_pop = False
        made.append(layer)
        return layer

    yield factory
    for layer in made:
        try:
            layer.flush()
        finally:
            layer.close()


@pytest.fixture
def layer(make_layer: Callable[..., Any]) -> Any:
    """A layer with defaults, except a short blocking timeout to keep tests quick."""
    return make_layer(blocking_timeout=0.5)


@pytest.fixture
def redis_layers(redis_url: str, unique_prefix: str) -> Iterator[Callable[..., RedisChannelLayer]]:
    """Build Redis layers (on the test Redis and this test's prefix unless told otherwise); all
    flushed and closed afterwards, even if the test left a shard unreachable."""
    made: list[RedisChannelLayer] = []

    def factory(hosts: list[str] | None = None, **options: Any) -> RedisChannelLayer:
        options.setdefault("prefix", unique_prefix)
        layer = RedisChannelLayer(hosts=hosts or [redis_url], **options)
        made.append(layer)
        return layer

    yield factory
    for layer in made:
        try:
            layer.flush()
        except redis.exceptions.RedisError:
            pass
        finally:
            layer.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A plain client on the test Redis, to see and do what the layer's other clients would."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()
