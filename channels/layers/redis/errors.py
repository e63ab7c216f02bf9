"""Shard failures: the error they raise, and how receives and group sends get past them.

Every command runs inside a :class:`ShardGuard`, which turns redis-py's connection errors into
:class:`RedisLayerUnavailable` naming the shard. A shard that failed is skipped by receives for
a moment while other shards answer, so one shard that is down holds up only its own part.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import redis

from channels.layers.base import LayerUnavailable, logger

#: After a shard fails, receives skip it this long (while other shards answer), so one shard
#: that is down neither stops the others' messages nor makes a receive loop spin on errors.
SHARD_RETRY_INTERVAL = 1.0


class RedisLayerUnavailable(LayerUnavailable, redis.exceptions.ConnectionError):
    """A Redis shard could not be reached, or stopped answering (see ``maybe_written``)."""

    def __init__(self, *args: Any) -> None:
        # The builtin ConnectionError base does not chain to redis-py's __init__, whose
        # attributes redis-py's repr() and retry logic read.
        super().__init__(*args)
        kinds = getattr(redis.exceptions, "ExceptionType", None)  # redis-py 7+
        self.error_type = kinds.NETWORK if kinds is not None else None
        self.status_code = None


class _LabelsShards(Protocol):
    def _shard_label(self, index: int) -> str: ...


class ShardGuard:
    """Turns redis-py's connection errors into :class:`RedisLayerUnavailable` naming the shard.

    A plain class rather than ``@contextmanager``: it wraps every command, and a generator
    based context manager costs several times more per use.
    """

    __slots__ = ("layer", "shard")

    def __init__(self, layer: _LabelsShards, shard: int) -> None:
        self.layer = layer
        self.shard = shard

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, traceback: Any) -> None:
        if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)) \
                and not isinstance(exc, RedisLayerUnavailable):
            unavailable = RedisLayerUnavailable(
                f"Redis shard {self.layer._shard_label(self.shard)} is unavailable: {exc}")
            unavailable.maybe_written = getattr(exc, "maybe_written", False)
            raise unavailable from exc


class ShardFailures:
    """What the layer does when a shard fails (a part of :class:`RedisChannelLayer`).

    Relies on the layer's ``_shard_label``; holds ``_down_until`` (shard -> monotonic time
    before which receives skip it).
    """

    _down_until: dict[int, float]

    def _init_shard_failures(self) -> None:
        self._down_until = {}

    def _guard(self, shard: int) -> ShardGuard:
        return ShardGuard(self, shard)

    def _usable(self, by_shard: dict[int, list[str]]) -> dict[int, list[str]]:
        """The receive's shards minus those that failed lately (all of them if all did)."""
        if not self._down_until:
            return by_shard
        now = time.monotonic()
        usable = {shard: queues for shard, queues in by_shard.items()
                  if self._down_until.get(shard, 0) <= now}
        return usable or by_shard

    def _mark_down(self, shard: int, exc: BaseException) -> None:
        logger.warning("Redis shard %s unavailable, receiving from the others: %s",
                       self._shard_label(shard), exc)
        self._down_until[shard] = time.monotonic() + SHARD_RETRY_INTERVAL

    def _uncount_failed(self, shard: int, exc: BaseException) -> None:
        # The entries already left Redis: raising now would lose them. Their per-socket counts
        # stay too high until the process queue is next seen empty (lua/common.lua).
        logger.warning("Redis shard %s: popped messages delivered, but their per-socket counts "
                       "were not updated: %s", self._shard_label(shard), exc)

    def _group_shard_missed(self, group: str, shard: int, exc: BaseException) -> None:
        # Like a full member, a member on a shard that is down misses this message: the group
        # send still reaches everyone else: a shard that is down affects only its own part.
        logger.warning("group %s: members on shard %s missed a message: %s", group,
                       self._shard_label(shard), exc)

    @staticmethod
    def _raise_if_all_failed(errors: list[BaseException], attempted: int) -> None:
        if errors and len(errors) == attempted:
            raise errors[0]
