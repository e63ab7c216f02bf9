"""Statistics of the Redis layer: counters the scripts keep, read back per channel or shard.

Counters live in hashes under the layer's prefix (``keys.py``), so ``flush()`` covers them.
"""

from __future__ import annotations

import time
from typing import Any

from channels.layers.base import is_process_channel, validate_channel_name

#: Per-channel statistics counters cover a window this long from their first count.
CHANNEL_STATISTICS_EXPIRY = 3600


class Statistics:
    """``global_statistics`` and ``channel_statistics`` (a part of :class:`RedisChannelLayer`).

    Relies on the layer's ``_clients`` (one redis-py client per shard), key names, ``_guard``
    and ``expiry``.
    """

    expiry: float
    _clients: list[Any]

    def global_statistics(self) -> dict[str, Any]:
        totals = {"messages_count": 0, "channel_full_count": 0}
        for shard, client in enumerate(self._clients):
            with self._guard(shard):
                counters = client.hgetall(self._global_stats_key)
            for name in totals:
                totals[name] += int(counters.get(name.encode(), 0))
        return totals

    def channel_statistics(self, channel: str) -> dict[str, Any]:
        validate_channel_name(channel)
        shard = self._shard_of(channel)
        with self._guard(shard):
            pipe = self._clients[shard].pipeline(transaction=False)
            pipe.hgetall(self._stats_key(channel))
            if is_process_channel(channel) and not channel.endswith("!"):
                pipe.hget(self._counts_key(channel), channel)
            else:
                pipe.llen(self._queue_key(channel))
            pipe.lindex(self._queue_key(channel), 0)
            counters, pending, head = pipe.execute()
        return self._statistics(counters, pending, head)

    def _statistics(self, counters: dict, pending: Any, head: bytes | None) -> dict[str, Any]:
        max_age = 0.0
        if head is not None:
            sent_ms = int(head[:14]) - int(self.expiry * 1000)
            max_age = max(0.0, time.time() - sent_ms / 1000)
        return {
            "messages_count": int(counters.get(b"messages_count", 0)),
            "channel_full_count": int(counters.get(b"channel_full_count", 0)),
            "messages_pending": int(pending or 0),
            "messages_max_age": max_age,
        }
