"""The Redis channel layer: many processes on many machines, sharded over several Redis servers.

:class:`RedisChannelLayer` is put together from parts, one concern a module, each a class
whose methods it inherits: ``keys`` (shards and key names), ``codec`` (entries), ``plans``
(what each operation runs where), ``stash``, ``errors`` (shard failures), ``stats``, and the
two APIs that run the plans, ``sync_api`` and ``async_api``. This module holds the options
and the connections to the shards.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.retry
from redis.backoff import NoBackoff

from channels.layers.base import BaseChannelLayer
from channels.layers.redis.async_api import AsyncAPI
from channels.layers.redis.codec import EntryCodec, fernet_keys
from channels.layers.redis.connections import ThreadConnections
from channels.layers.redis.errors import ShardFailures
from channels.layers.redis.keys import KeyNames
from channels.layers.redis.plans import Plans
from channels.layers.redis.scripts import SCRIPTS
from channels.layers.redis.stash import Stash
from channels.layers.redis.stats import Statistics
from channels.layers.redis.sync_api import SyncAPI


class RedisChannelLayer(SyncAPI, AsyncAPI, Statistics, Plans, Stash, EntryCodec, KeyNames,
                        ShardFailures, BaseChannelLayer):
    """The production layer. Options and data model: ``docs/layers.md``."""

    # One script call per shard, and one channel lives on one shard.
    atomic_send_many = True

    def __init__(
        self,
        expiry: float = 60,
        hosts: Sequence[Any] | None = None,
        prefix: str = "asgi:",
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: Any = None,
        symmetric_encryption_keys: Sequence[str | bytes] | None = None,
        stats_prefix: str | None = None,
        connection_kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(expiry=expiry, group_expiry=group_expiry, capacity=capacity,
                         channel_capacity=channel_capacity, **options)
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str: {prefix!r}")
        self.prefix = prefix
        # Kept for Channels 1 settings; statistics live under ``prefix`` so flush() covers them.
        self.stats_prefix = stats_prefix
        self._fernet = fernet_keys(symmetric_encryption_keys)
        self.connection_kwargs = self._client_kwargs(connection_kwargs or {})
        self.hosts = self._parse_hosts(hosts)
        self._setup_shards()
        # Guards what threads and event loops share: the stash and the sync API's pops.
        self._lock = threading.Lock()
        self._init_stash()
        self._init_sync_api()
        self._init_async_api()
        self._init_shard_failures()
        self._init_plans()

    # -- configuration ------------------------------------------------------------------------

    def _client_kwargs(self, given: dict[str, Any]) -> dict[str, Any]:
        """Connection options with explicit timeouts: redis-py's default would kill idle BLPOPs."""
        kwargs = dict(given)
        timeout = kwargs.setdefault("socket_timeout", self.blocking_timeout + 5)
        if timeout is not None and timeout <= self.blocking_timeout:
            raise ValueError(
                f"connection_kwargs socket_timeout ({timeout}) must be longer than the blocking "
                f"receive timeout ({self.blocking_timeout}), or blocking pops would time out"
            )
        kwargs.setdefault("socket_connect_timeout", 5)
        return kwargs

    @staticmethod
    def _parse_hosts(hosts: Any) -> list[str]:
        if hosts is None:
            hosts = [("localhost", 6379)]
        if isinstance(hosts, (str, bytes)) or not isinstance(hosts, Sequence) or not hosts:
            raise ValueError(f"hosts must be a non-empty list of URLs or (host, port): {hosts!r}")
        urls = []
        for host in hosts:
            if isinstance(host, str):
                urls.append(host)
            elif isinstance(host, (tuple, list)) and len(host) == 2:
                urls.append(f"redis://{host[0]}:{int(host[1])}/0")
            else:
                raise ValueError(f"hosts entry must be a redis:// URL or (host, port): {host!r}")
        return urls

    def _setup_shards(self) -> None:
        self.ring_size = len(self.hosts)
        self._clients = [self._make_sync_client(i) for i in range(self.ring_size)]
        # The hot path (send, receive, group send) runs on these; everything else on _clients.
        self._direct = ThreadConnections([client.connection_pool for client in self._clients])
        self._scripts = {name: self._clients[0].register_script(source)
                         for name, source in SCRIPTS.items()}

    def _sync_kwargs(self) -> dict[str, Any]:
        kwargs = dict(self.connection_kwargs)
        kwargs.setdefault("retry", redis.retry.Retry(NoBackoff(), 0))
        return kwargs

    def _async_kwargs(self) -> dict[str, Any]:
        kwargs = dict(self.connection_kwargs)
        kwargs.setdefault("retry", redis.asyncio.retry.Retry(NoBackoff(), 0))
        return kwargs

    def _make_sync_client(self, index: int) -> redis.Redis:
        # No automatic retry: a resent script could queue a message twice (at most once!).
        return redis.Redis.from_url(self.hosts[index], **self._sync_kwargs())

    def _make_async_client(self, index: int) -> redis.asyncio.Redis:
        return redis.asyncio.Redis.from_url(self.hosts[index], **self._async_kwargs())

    def _shard_label(self, index: int) -> str:
        return self.hosts[index]


class RedisLocalChannelLayer(RedisChannelLayer):
    """Channels 1 name kept for settings: here every channel, local or not, lives in Redis.

    asgi_redis routed normal channels through a machine-local IPC layer; one Redis round trip
    per send makes that detour unnecessary, and it required a worker on every machine.
    """
