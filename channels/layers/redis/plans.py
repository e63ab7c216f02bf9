"""Plans: which shard, which script, which keys and arguments each operation runs.

Worked out once here and run by either API (``sync_api.py`` on a thread's connections,
``async_api.py`` on an event loop's), so both behave identically. The routes of channels a
process uses over and over are cached in the exact shape a call needs.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from typing import Any

import redis

from channels.layers.base import (
    is_process_channel,
    logger,
    validate_channel_name,
    validate_channel_names,
    validate_group_name,
)
from channels.layers.redis.codec import entry_channel, frame_entry
from channels.layers.redis.stats import CHANNEL_STATISTICS_EXPIRY


def check_limit(limit: Any) -> None:
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"limit must be a positive int: {limit!r}")


class Plans:
    """Script calls and commands of each operation (a part of :class:`RedisChannelLayer`).

    Relies on the layer's options (``expiry``, ``group_expiry``, capacities, ``prefix``), key
    names and codec. Holds the route caches and ``_native_pop`` (whether Redis has LMPOP).
    """

    expiry: float
    group_expiry: float
    capacity: int
    process_capacity: int
    prefix: str
    _native_pop: bool
    _routes: dict[str, tuple[int, str, str, str, int]]
    _send_routes: dict[str, tuple[int, tuple, bytes, int, int]]
    _receive_plans: dict[tuple, tuple[list[str], dict[int, list[str]]]]

    def _init_plans(self) -> None:
        self._native_pop = True
        self._routes = {}
        self._send_routes = {}
        self._receive_plans = {}

    # -- sends --------------------------------------------------------------------------------

    def _route(self, channel: str) -> tuple[int, str, str, str, int]:
        """Shard, queue key, counts key, statistics key and capacity of a (valid) channel.

        Cached: a busy process sends to the same few channels over and over, and working these
        out each time costs as much as a third of the send's own Python time.
        """
        route = self._routes.get(channel)
        if route is None:
            validate_channel_name(channel)
            if len(self._routes) >= 10_000:
                self._routes.clear()
            route = self._routes[channel] = (
                self._shard_of(channel), self._queue_key(channel), self._counts_key(channel),
                self._stats_key(channel), self.get_capacity(channel))
        return route

    def _push_plan(self, messages: list[tuple[str, bytes]], now_ms: int) -> tuple[list, list]:
        keys: list[str] = [self._global_stats_key]
        args: list[Any] = [now_ms, self._ttl(), self.process_capacity, CHANNEL_STATISTICS_EXPIRY]
        for channel, entry in messages:
            _, queue, counts, stats, capacity = self._route(channel)
            keys += [queue, counts, stats]
            args += [channel, capacity, entry]
        return keys, args

    def _send_route(self, channel: str) -> tuple[int, tuple, bytes, int, int]:
        """Shard, keys of the send script, entry framing, capacity and statistics TTL.

        Cached like ``_route``, in the exact shape the send call needs, so a send does no
        more per-call work than it must (keys and framing are the same every time).
        """
        route = self._send_routes.get(channel)
        if route is None:
            shard, queue, counts, stats, capacity = self._route(channel)
            keys = (queue, stats, self._global_stats_key, *((counts,) if counts else ()))
            name = channel.encode("ascii")
            # A single-reader channel is used once (one per request body): its statistics
            # live as long as its messages, or one key per use would pile up (daphne#124).
            stats_ttl = self._ttl() if "?" in channel else CHANNEL_STATISTICS_EXPIRY
            if len(self._send_routes) >= 10_000:
                self._send_routes.clear()
            route = self._send_routes[channel] = (shard, keys, bytes((len(name),)) + name,
                                                  capacity, stats_ttl)
        return route

    def _send_plan(self, channel: str, message: dict) -> tuple[int, list]:
        """Shard and argument list of the send script (``lua/send.lua``)."""
        shard, keys, framing, capacity, stats_ttl = self._send_route(channel)
        payload = self._encode(message)
        now_ms = int(time.time() * 1000)
        entry = b"%014d" % (now_ms + int(self.expiry * 1000)) + framing + payload
        return shard, [len(keys), *keys, entry, capacity, math.ceil(self.expiry) + 1,
                       stats_ttl, self.process_capacity, now_ms, channel]

    def _send_many_plans(self, messages: Any) -> dict[int, tuple[list[int], list, list]]:
        """Per shard: the indexes of its messages and one push call for them all.

        Every name and message is checked and encoded first, so bad input writes nothing.
        """
        if isinstance(messages, (str, bytes, dict)) or not isinstance(messages, Sequence):
            raise TypeError(f"send_many() takes a list of (channel, message) pairs: "
                            f"{messages!r:.200}")
        now_ms = int(time.time() * 1000)
        deadline = self._deadline_ms(now_ms)
        per_shard: dict[int, list[tuple[int, str, bytes]]] = {}
        for index, pair in enumerate(messages):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"send_many() item {index} is not a (channel, message) pair: "
                                f"{pair!r:.200}")
            channel, message = pair
            shard = self._route(channel)[0]
            entry = frame_entry(deadline, channel, self._encode(message))
            per_shard.setdefault(shard, []).append((index, channel, entry))
        return {shard: ([index for index, _, _ in items],
                        *self._push_plan([(channel, entry) for _, channel, entry in items],
                                         now_ms))
                for shard, items in per_shard.items()}

    # -- receives -----------------------------------------------------------------------------

    def _receive_plan(self, channels: Any) -> tuple[list[str], dict[int, list[str]]]:
        """Checked queue names of a receive, grouped by shard (cached per channel list)."""
        cache_key = None
        if isinstance(channels, (list, tuple)) and all(isinstance(c, str) for c in channels):
            cache_key = tuple(channels)
        plan = self._receive_plans.get(cache_key) if cache_key is not None else None
        if plan is None:
            queues = validate_channel_names(channels)
            shards: dict[int, list[str]] = {}
            for queue in dict.fromkeys(queues):
                shards.setdefault(self._shard_of(queue), []).append(queue)
            plan = (queues, shards)
            if cache_key is not None:
                if len(self._receive_plans) >= 1000:
                    self._receive_plans.clear()
                self._receive_plans[cache_key] = plan
        return plan

    def _pop_plan(self, queues: list[str], limit: int) -> tuple[list, list]:
        order = list(queues)
        random.shuffle(order)  # fairness: a busy channel must not starve a quiet one
        keys = [self._queue_key(q) for q in order]
        args = [limit, int(time.time() * 1000), *(self._counts_key(q) for q in order)]
        return keys, args

    def _shuffled_keys(self, queues: list[str]) -> list[str]:
        if len(queues) == 1:
            return [self._queue_key(queues[0])]
        keys = [self._queue_key(q) for q in queues]
        random.shuffle(keys)  # fairness: a busy channel must not starve a quiet one
        return keys

    def _native_pop_for(self, queues: list[str]) -> bool:
        # LMPOP (Redis 7) pops like the Lua script, one native command cheaper; process queues
        # still need the script, which keeps their per-socket counts in step atomically.
        return self._native_pop and not any("!" in q for q in queues)

    def _native_unsupported(self, exc: redis.exceptions.ResponseError) -> None:
        if "unknown command" not in str(exc).lower():
            raise exc
        logger.info("Redis lacks LMPOP/BLMPOP (before 7.0): receiving through Lua only")
        self._native_pop = False

    def _uncount_plan(self, entries: list[bytes]) -> tuple[list, list] | None:
        """Counts to decrement for process-queue entries taken by a plain blocking pop."""
        keys: list[str] = []
        channels: list[str] = []
        for entry in entries:
            channel = entry_channel(entry)
            if is_process_channel(channel):
                keys += [self._counts_key(channel), self._queue_key(channel)]
                channels.append(channel)
        return (keys, channels) if keys else None

    # -- groups -------------------------------------------------------------------------------

    def _group_add_commands(self, pipe: Any, group: str, channel: str) -> None:
        ttl = math.ceil(self.group_expiry)
        placement = f"{self._shard_of(channel)}:{self.group_member_capacity(channel)}"
        pipe.zadd(self._group_key(group), {channel: time.time()})
        pipe.hset(self._placement_key(group), channel, placement)
        pipe.expire(self._group_key(group), ttl)
        pipe.expire(self._placement_key(group), ttl)

    def _group_discard_commands(self, pipe: Any, group: str, channel: str) -> None:
        pipe.zrem(self._group_key(group), channel)
        pipe.hdel(self._placement_key(group), channel)

    def _members_call(self, group: str) -> tuple[list, list]:
        return ([self._group_key(group), self._placement_key(group)],
                [time.time() - self.group_expiry])

    def _group_send_plan(self, group: str, message: dict) -> tuple[bytes, bytes, int]:
        validate_group_name(group)
        payload = self._encode(message)
        now_ms = int(time.time() * 1000)
        return payload, self._deadline_ms(now_ms), now_ms

    def _group_send_call(self, group: str, shard: int, payload: bytes, deadline: bytes,
                         now_ms: int) -> tuple[list, list]:
        keys = [self._group_key(group), self._placement_key(group), self._global_stats_key]
        args = [now_ms, self._ttl(), self.process_capacity, CHANNEL_STATISTICS_EXPIRY,
                self.prefix, shard, deadline, payload, time.time() - self.group_expiry,
                self.capacity]
        return keys, args

    def _remote_plans(self, reply: list, payload: bytes, deadline: bytes,
                      now_ms: int) -> dict[int, tuple[list, list]]:
        """Push calls for the members the group's shard did not hold, one per shard."""
        per_shard: dict[int, list[tuple[str, int, bytes]]] = {}
        for index in range(1, len(reply), 2):
            channel = reply[index].decode("ascii")
            per_shard.setdefault(self._shard_of(channel), []).append(
                (channel, int(reply[index + 1]), frame_entry(deadline, channel, payload)))
        plans = {}
        for shard, items in per_shard.items():
            keys, args = self._push_plan([], now_ms)
            for channel, capacity, entry in items:
                keys += [self._queue_key(channel), self._counts_key(channel),
                         self._stats_key(channel)]
                args += [channel, capacity, entry]
            plans[shard] = (keys, args)
        return plans
