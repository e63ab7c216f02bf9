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

    def __repr__(self) -> str:
        # redis-py 7+ reprs its errors as "network:ConnectionError", without the message: a
        # log line written with %r would then say neither which Redis nor what went wrong.
        return f"{type(self).__name__}({str(self)!r})"


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

    Relies on the layer's ``_shard_label`` and ``ring_size``; holds ``_down_until`` (shard ->
    monotonic time before which receives skip it), ``_down_since`` (when its outage began) and
    ``_probing`` (down shards a receive is trying again).
    """

    _down_until: dict[int, float]
    _down_since: dict[int, float]
    _probing: set[int]
    ring_size: int

    def _init_shard_failures(self) -> None:
        self._down_until = {}
        self._down_since = {}
        self._probing = set()

    def _guard(self, shard: int) -> ShardGuard:
        return ShardGuard(self, shard)

    def _usable(self, by_shard: dict[int, list[str]]) -> dict[int, list[str]]:
        """The receive's shards minus those that failed lately (all of them if all did)."""
        if not self._down_until:
            return by_shard
        now = time.monotonic()
        usable = {}
        for shard, queues in by_shard.items():
            until = self._down_until.get(shard)
            if until is not None:
                if until > now:
                    continue
                if shard in self._probing:
                    # Tried again after its last failure, and not marked down since: it answers.
                    self._shard_back(shard, now)
                else:
                    self._probing.add(shard)
            usable[shard] = queues
        return usable or by_shard

    def _mark_down(self, shard: int, exc: BaseException) -> None:
        """A receive found ``shard`` unreachable: skip it for a while, and say so once per outage.

        With one shard there is nobody else to receive from: the error reaches the caller,
        which reports it, so the layer adds nothing.
        """
        if self.ring_size == 1:
            return
        now = time.monotonic()
        self._down_until[shard] = now + SHARD_RETRY_INTERVAL
        self._probing.discard(shard)
        if shard not in self._down_since:
            self._down_since[shard] = now
            logger.warning("Redis shard %s unreachable; receiving from the other shards until it "
                           "answers: %s", self._shard_label(shard), exc)

    def _shard_back(self, shard: int, now: float) -> None:
        since = self._down_since.pop(shard, now)
        self._down_until.pop(shard, None)
        self._probing.discard(shard)
        logger.warning("Redis shard %s reachable again after %.1f s", self._shard_label(shard),
                       now - since)

    def _uncount_failed(self, shard: int, exc: BaseException) -> None:
        # The entries already left Redis: raising now would lose them. Their per-socket counts
        # stay too high until the process queue is next seen empty (lua/common.lua).
        # Debug only: it happens whenever Redis goes away under a server's blocking pop, the
        # caller reports the outage itself, and the counts correct themselves.
        logger.debug("Redis shard %s: popped messages delivered, but their per-socket counts "
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
