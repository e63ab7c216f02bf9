"""The Redis layer over Sentinel-managed masters (``RedisSentinelChannelLayer``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel

from channels.layers.redis.errors import RedisLayerUnavailable
from channels.layers.redis.layer import RedisChannelLayer


class RedisSentinelChannelLayer(RedisChannelLayer):
    """The Redis layer over Sentinel-managed masters: each service name is one shard."""

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
        services: Sequence[str] | None = None,
        sentinel_refresh_interval: float = 0,
        sentinels: Sequence[Any] | None = None,
        service_names: Sequence[str] | None = None,
        sentinel_kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        hosts = sentinels if sentinels is not None else hosts
        if hosts is None:
            hosts = [("localhost", 26379)]
        if isinstance(hosts, (str, bytes)) or not all(
                isinstance(h, (tuple, list)) and len(h) == 2 for h in hosts):
            raise ValueError(f"Sentinel hosts must be a list of (host, port) pairs: {hosts!r}")
        self.sentinels = [(str(h), int(p)) for h, p in hosts]
        services = service_names if service_names is not None else services
        if services is not None and (isinstance(services, (str, bytes)) or not all(
                isinstance(s, str) for s in services)):
            raise ValueError(f"services must be a list of master names: {services!r}")
        self.services = list(services or [])
        self.sentinel_refresh_interval = sentinel_refresh_interval
        self.sentinel_kwargs = dict(sentinel_kwargs or {})
        super().__init__(expiry=expiry, hosts=[f"sentinel://{h}:{p}" for h, p in self.sentinels],
                         prefix=prefix, group_expiry=group_expiry, capacity=capacity,
                         channel_capacity=channel_capacity,
                         symmetric_encryption_keys=symmetric_encryption_keys,
                         stats_prefix=stats_prefix, connection_kwargs=connection_kwargs,
                         **options)

    def _setup_shards(self) -> None:
        # redis-py's Sentinel clients follow failovers themselves (they re-ask the sentinels
        # on a connection error), which replaces asgi_redis's periodic refresh.
        self._sentinel = redis.sentinel.Sentinel(
            self.sentinels, sentinel_kwargs=self.sentinel_kwargs or None,
            **self._sync_kwargs())
        if not self.services:
            try:
                masters = self._sentinel.sentinels[0].sentinel_masters()
            except redis.exceptions.RedisError as exc:
                raise RedisLayerUnavailable(f"No sentinel answered: {exc}") from exc
            self.services = sorted(masters)
        if not self.services:
            raise ValueError("Sentinel reports no masters and no services were given")
        self.hosts = [f"sentinel:{name}" for name in self.services]
        super()._setup_shards()

    def _make_sync_client(self, index: int) -> redis.Redis:
        return self._sentinel.master_for(self.services[index])

    def _make_async_client(self, index: int) -> redis.asyncio.Redis:
        sentinel = redis.asyncio.sentinel.Sentinel(
            self.sentinels, sentinel_kwargs=self.sentinel_kwargs or None,
            **self._async_kwargs())
        return sentinel.master_for(self.services[index])
