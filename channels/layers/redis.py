"""Redis channel layer: many processes on many machines, sharded over several Redis servers.

Every operation is planned once (which shard, which Lua script, which keys and arguments; see
``redis_scripts.py`` for the data model) and then run by a synchronous ``redis.Redis`` or, from
an event loop, by that loop's own ``redis.asyncio`` clients, so both APIs behave identically.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import math
import random
import threading
import time
import weakref
import zlib
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.sentinel
from redis.backoff import NoBackoff

from channels.layers import redis_scripts
from channels.layers.base import (
    BaseChannelLayer,
    ChannelFull,
    LayerUnavailable,
    deserialize_message,
    is_process_channel,
    logger,
    non_local_name,
    random_suffix,
    validate_channel_name,
    validate_channel_names,
    validate_group_name,
    validate_new_channel_pattern,
)
from channels.layers.redis_connections import LoopConnections, ThreadConnections

#: Per-channel statistics counters cover a window this long from their first count.
CHANNEL_STATISTICS_EXPIRY = 3600

#: After a shard fails, receives skip it this long (while other shards answer), so one shard
#: that is down neither stops the others' messages nor makes a receive loop spin on errors.
SHARD_RETRY_INTERVAL = 1.0

#: Longest time (seconds) the per-socket counts of entries an asyncio blocking pop took stay
#: high: the update normally rides along with the next pop on that shard, in the same write.
UNCOUNT_DELAY = 0.05
#: Commands that may wait in Redis: their connections are not counted as busy ones.
_BLOCKING = frozenset({"BLMPOP", "BLPOP"})

#: Blocking pops the sync API runs at once for receives spanning shards (one per shard and
#: distinct channel list being waited on); more wait for a free thread.
MAX_WAITING_POPS = 256

_SCRIPTS = {
    "send": redis_scripts.SEND,
    "push": redis_scripts.PUSH,
    "group_send": redis_scripts.GROUP_SEND,
    "group_members": redis_scripts.GROUP_MEMBERS,
    "pop": redis_scripts.POP,
    "uncount": redis_scripts.UNCOUNT,
}


class RedisLayerUnavailable(LayerUnavailable, redis.exceptions.ConnectionError):
    """A Redis shard could not be reached, or stopped answering (see ``maybe_written``)."""

    def __init__(self, *args: Any) -> None:
        # The builtin ConnectionError base does not chain to redis-py's __init__, whose
        # attributes redis-py's repr() and retry logic read.
        super().__init__(*args)
        kinds = getattr(redis.exceptions, "ExceptionType", None)  # redis-py 7+
        self.error_type = kinds.NETWORK if kinds is not None else None
        self.status_code = None


class _Guard:
    """Turns redis-py's connection errors into :class:`RedisLayerUnavailable` naming the shard.

    A plain class rather than ``@contextmanager``: it wraps every command, and a generator
    based context manager costs several times more per use.
    """

    __slots__ = ("layer", "shard")

    def __init__(self, layer: RedisChannelLayer, shard: int) -> None:
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


@dataclass
class _AsyncState:
    """The asyncio clients of one event loop (redis.asyncio connections belong to one loop)."""

    clients: list
    scripts: dict
    # The hot path's connections (send, receive, group send); everything else uses clients.
    conns: LoopConnections
    inflight: dict = field(default_factory=dict)
    # Non-blocking pops whose caller was cancelled while Redis was answering: what they bring
    # back goes to the stash.
    orphans: set = field(default_factory=set)
    # Timer-sent per-socket count updates in flight (awaited by close_async, never by a
    # receive: that would put the round trip back).
    uncounting: set = field(default_factory=set)
    # Per shard: per-socket count updates owed for entries a blocking pop took, sent in the
    # same write as that shard's next pop (or by a timer, UNCOUNT_DELAY later at most).
    uncounts: dict = field(default_factory=dict)
    uncount_timers: set = field(default_factory=set)
    # Channel lists whose last non-blocking pop found nothing: their next receive goes
    # straight to the blocking pop, which answers at once anyway if something arrived.
    idle: set = field(default_factory=set)


def _fernet_keys(keys: Any) -> Any:
    if keys is None:
        return None
    if isinstance(keys, (str, bytes)) or not isinstance(keys, Sequence) or not keys:
        raise ValueError("symmetric_encryption_keys must be a non-empty list of secrets")
    from cryptography.fernet import Fernet, MultiFernet

    fernets = []
    for key in keys:
        if isinstance(key, str):
            key = key.encode("utf8")
        # Any secret works: hash it to the 32 bytes Fernet needs.
        fernets.append(Fernet(base64.urlsafe_b64encode(hashlib.sha256(key).digest())))
    return MultiFernet(fernets)


class RedisChannelLayer(BaseChannelLayer):
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
        self._fernet = _fernet_keys(symmetric_encryption_keys)
        self.connection_kwargs = self._client_kwargs(connection_kwargs or {})
        self.hosts = self._parse_hosts(hosts)
        self._setup_shards()
        self._lock = threading.Lock()
        # Entries popped by a blocking pop that finished after its caller had returned: handed
        # out first on the next receive (they left Redis, so they must not be lost).
        self._stash: dict[str, deque[bytes]] = {}
        self._inflight: dict[tuple, concurrent.futures.Future] = {}
        # Blocking receives waiting while another caller's pop may bring their message into
        # the stash (waiter -> its queues), and how many such pops run per queue.
        self._stash_waiters: dict[concurrent.futures.Future | _LoopWaiter, frozenset[str]] = {}
        self._pending_pops: Counter[str] = Counter()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._down_until: dict[int, float] = {}
        self._native_pop = True
        self._routes: dict[str, tuple[int, str, str, str, int]] = {}
        self._send_routes: dict[str, tuple[int, tuple, bytes, int, int]] = {}
        self._receive_plans: dict[tuple, tuple[list[str], dict[int, list[str]]]] = {}
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _AsyncState] = (
            weakref.WeakKeyDictionary()
        )

    # -- configuration --------------------------------------------------------------------------

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
                         for name, source in _SCRIPTS.items()}

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

    # -- names, keys, entries ---------------------------------------------------------------

    def _shard_of(self, name: str) -> int:
        """Consistent hash: a ``!`` channel by its process prefix, anything else by name."""
        if self.ring_size == 1:
            return 0
        bucket = zlib.crc32(non_local_name(name).encode("ascii")) & 0xFFF
        return bucket * self.ring_size // 4096

    def _queue_key(self, name: str) -> str:
        return self.prefix + non_local_name(name)

    def _counts_key(self, name: str) -> str:
        return self.prefix + "#c:" + non_local_name(name) if is_process_channel(name) else ""

    def _stats_key(self, name: str) -> str:
        return self.prefix + "#s:" + non_local_name(name)

    def _group_key(self, group: str) -> str:
        return self.prefix + "#g:" + group

    def _placement_key(self, group: str) -> str:
        return self.prefix + "#p:" + group

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

    @property
    def _global_stats_key(self) -> str:
        return self.prefix + "#s"

    def _encode(self, message: Any) -> bytes:
        payload = self.serialize(message)
        if self._fernet is not None:
            payload = self._fernet.encrypt(payload)
        return payload

    def _deadline_ms(self, now_ms: int) -> bytes:
        return b"%014d" % (now_ms + int(self.expiry * 1000))

    @staticmethod
    def _entry(deadline: bytes, channel: str, payload: bytes) -> bytes:
        name = channel.encode("ascii")
        return deadline + bytes((len(name),)) + name + payload

    def _decode_entry(self, entry: bytes) -> tuple[str, dict] | None:
        """``(channel, message)`` of a live entry; None if it expired or cannot be read."""
        channel = _entry_channel(entry)
        try:
            if int(entry[:14]) <= time.time() * 1000:
                return None
            payload = entry[15 + entry[14]:]
            if self._fernet is not None:
                payload = self._fernet.decrypt(payload)
            return channel, deserialize_message(payload)
        except Exception as exc:  # wrong key, tampering, another writer's format: never deliver
            if type(exc).__name__ == "InvalidToken":
                logger.error("dropping a message on %s that none of symmetric_encryption_keys "
                             "decrypts (a sender with another key, or tampering)", channel)
            else:
                logger.warning("dropping an unreadable message on %r: %s", channel, exc,
                               exc_info=True)
            return None

    def _ttl(self) -> int:
        return math.ceil(self.expiry) + 1

    # -- plans: what to run where (shared by the sync and async paths) -------------------------

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
        """Shard and argument list of the send script (``redis_scripts.SEND``)."""
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
            entry = self._entry(deadline, channel, self._encode(message))
            per_shard.setdefault(shard, []).append((index, channel, entry))
        return {shard: ([index for index, _, _ in items],
                        *self._push_plan([(channel, entry) for _, channel, entry in items],
                                         now_ms))
                for shard, items in per_shard.items()}

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
            channel = _entry_channel(entry)
            if is_process_channel(channel):
                keys += [self._counts_key(channel), self._queue_key(channel)]
                channels.append(channel)
        return (keys, channels) if keys else None

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

    def _decode_all(self, entries: list[bytes]) -> list[tuple[str, dict]]:
        decoded = (self._decode_entry(entry) for entry in entries)
        return [item for item in decoded if item is not None]

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
                (channel, int(reply[index + 1]), self._entry(deadline, channel, payload)))
        plans = {}
        for shard, items in per_shard.items():
            keys, args = self._push_plan([], now_ms)
            for channel, capacity, entry in items:
                keys += [self._queue_key(channel), self._counts_key(channel),
                         self._stats_key(channel)]
                args += [channel, capacity, entry]
            plans[shard] = (keys, args)
        return plans

    # -- stash of entries popped for a caller that had already returned ------------------------

    def _stash_entry(self, entry: bytes) -> None:
        queue = non_local_name(_entry_channel(entry))
        with self._lock:
            self._stash.setdefault(queue, deque()).append(entry)
            woken = [waiter for waiter, queues in self._stash_waiters.items() if queue in queues]
        for waiter in woken:
            _resolve(waiter)

    def _watch_stash(self, queues: list[str],
                     waiter: concurrent.futures.Future | _LoopWaiter | None = None) -> Any:
        """A waiter resolved as soon as the stash holds an entry for one of ``queues``
        (``waiter``, or a new concurrent future).

        A pop left waiting by an earlier receive (another thread's, another loop's, the sync
        API's) can take the message a later receive waits for; without this, that receive
        would only see it once its own pop timed out.
        """
        if waiter is None:
            waiter = concurrent.futures.Future()
        with self._lock:
            self._stash_waiters[waiter] = frozenset(queues)
            if any(queue in self._stash for queue in queues):
                _resolve(waiter)
        return waiter

    def _watch_stash_async(self, queues: list[str]) -> _LoopWaiter:
        """``_watch_stash`` for a coroutine: its ``future`` belongs to the running loop.

        The stash is filled by the loop's own pops far more often than by another thread's;
        resolved from the loop's thread, the future is set directly, where a concurrent future
        wrapped for asyncio would cost a write to the loop's self-pipe (two system calls and a
        pass of the loop) on every wake-up of a server's reply loop.
        """
        loop = asyncio.get_running_loop()
        return self._watch_stash(queues, _LoopWaiter(loop, loop.create_future()))

    def _unwatch_stash(self, waiter: concurrent.futures.Future | _LoopWaiter) -> None:
        with self._lock:
            self._stash_waiters.pop(waiter, None)

    def _count_pending_pop(self, queues: list[str], step: int) -> None:
        with self._lock:
            for queue in queues:
                self._pending_pops[queue] += step
                if self._pending_pops[queue] <= 0:
                    del self._pending_pops[queue]

    def _pops_pending(self, queues: list[str]) -> bool:
        return bool(self._pending_pops) and any(queue in self._pending_pops for queue in queues)

    def _take_stash(self, queues: list[str], limit: int) -> list[tuple[str, dict]]:
        if not self._stash:
            return []
        taken: list[bytes] = []
        with self._lock:
            for queue in queues:
                pending = self._stash.get(queue)
                while pending and len(taken) < limit:
                    taken.append(pending.popleft())
                if pending is not None and not pending:
                    del self._stash[queue]
        return self._decode_all(taken)

    # -- error translation ------------------------------------------------------------------

    def _guard(self, shard: int) -> _Guard:
        return _Guard(self, shard)

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
        # stay too high until the process queue is next seen empty (redis_scripts.py).
        logger.warning("Redis shard %s: popped messages delivered, but their per-socket counts "
                       "were not updated: %s", self._shard_label(shard), exc)

    @staticmethod
    def _raise_if_all_failed(errors: list[BaseException], attempted: int) -> None:
        if errors and len(errors) == attempted:
            raise errors[0]

    # -- synchronous API ------------------------------------------------------------------

    def send(self, channel: str, message: dict) -> None:
        shard, args = self._send_plan(channel, message)
        with self._guard(shard):
            queued = self._evalsha_args(shard, "send", args)
        if not queued:
            raise ChannelFull(channel)

    def send_many(self, messages: Sequence[tuple[str, dict]]) -> list[bool]:
        """Send several messages with one round trip per shard; True where queued, False
        where that channel was full (never raises ``ChannelFull``).

        A shard that is down raises ``RedisLayerUnavailable`` after the other shards' pushes
        were made (they cannot be taken back), like separate sends would have.
        """
        return self._push_plans(self._send_many_plans(messages), len(messages))

    def receive(self, channels: list[str], block: bool = False) -> tuple:
        batch = self.receive_batch(channels, 1, block=block)
        return batch[0] if batch else (None, None)

    def receive_batch(self, channels: list[str], limit: int,
                      block: bool = False) -> list[tuple[str, dict]]:
        queues, by_shard = self._receive_plan(channels)
        _check_limit(limit)
        deadline = time.monotonic() + self.blocking_timeout
        while True:
            received = self._take_stash(queues, limit)
            if received:
                return received
            usable = self._usable(by_shard)
            received = self._pop_sync(usable, limit)
            remaining = deadline - time.monotonic()
            if received or not block or remaining <= 0:
                return received
            if len(usable) == 1 and not self._pops_pending(queues):
                [(shard, shard_queues)] = usable.items()
                received = self._decode_all(
                    self._block_pop_sync(shard, shard_queues, limit, remaining))
                if received:
                    return received
            else:
                self._wait_any_shard_sync(usable, remaining)

    def send_then_receive_batch(
        self, messages: Sequence[tuple[str, dict]], channels: list[str], limit: int,
        block: bool = False,
    ) -> tuple[list[bool], list[tuple[str, dict]]]:
        """The sends and a non-blocking pop in one write when they share a shard (a worker's
        replies and its next request: one round trip per request instead of two, whenever
        requests are queued); anything else, or a blocking wait when the pop found nothing, as
        separate calls.
        """
        if not messages:
            return [], self.receive_batch(channels, limit, block=block)
        queues, by_shard = self._receive_plan(channels)
        _check_limit(limit)
        plans = self._send_many_plans(messages)  # bad input raises here, having written nothing
        usable = self._usable(by_shard)
        if (len(plans) != 1 or list(plans) != list(usable) or not self._native_pop_for(queues)
                or self._stash or self._pops_pending(queues)):
            flags = self._push_plans(plans, len(messages))
            return flags, self.receive_batch(channels, limit, block=block)
        [(shard, (indexes, keys, args))] = plans.items()
        pop_keys = self._shuffled_keys(queues)
        # Blocking (BLMPOP answers at once when something is queued) only once this
        # connection has run a script: else a push refused for a missing script (a restarted
        # or new server) could only be retried after the blocking pop had timed out.
        blocking = block and self._direct.scripts_known(shard)
        pop = (("BLMPOP", self.blocking_timeout) if blocking else ("LMPOP",)) + (
            len(pop_keys), *pop_keys, "LEFT", "COUNT", limit)
        with self._guard(shard):
            pushed, popped = self._direct.pipeline(shard, [
                ("EVALSHA", self._scripts["push"].sha, len(keys), *keys, *args), pop])
        try:
            with self._guard(shard):
                if isinstance(pushed, redis.exceptions.NoScriptError):  # push again
                    pushed = self._evalsha_args(shard, "push", [len(keys), *keys, *args])
                elif isinstance(pushed, redis.exceptions.ResponseError):
                    raise pushed
                else:
                    self._direct.mark_scripts_known(shard)
        except BaseException:
            # The pop ran whatever became of the push: what it took must not be lost with
            # the error, so it waits in the stash for the next receive.
            if popped and not isinstance(popped, redis.exceptions.ResponseError):
                for entry in popped[1]:
                    self._stash_entry(entry)
            raise
        flags = [False] * len(messages)
        for index, ok in zip(indexes, pushed, strict=True):
            flags[index] = bool(ok)
        if isinstance(popped, redis.exceptions.ResponseError):
            self._native_unsupported(popped)  # Redis before 7: receive through Lua instead
            return flags, self.receive_batch(channels, limit, block=block)
        if popped is not None:
            received = self._decode_all(popped[1])
            if received:
                return flags, received
            # All expired: there may be live entries behind them.
            return flags, self.receive_batch(channels, limit, block=block)
        if blocking or not block:  # nothing queued (for blocking_timeout, if it blocked)
            return flags, []
        # Nothing queued: wait right away, without receive_batch's non-blocking pop first
        # (one shard and no other pop pending on these queues: checked above).
        return flags, self._decode_all(
            self._block_pop_sync(shard, usable[shard], limit, self.blocking_timeout))

    def _push_plans(self, plans: dict[int, tuple[list[int], list, list]],
                    count: int) -> list[bool]:
        flags = [False] * count
        errors: list[BaseException] = []
        for shard, (indexes, keys, args) in plans.items():
            try:
                with self._guard(shard):
                    queued = self._evalsha_args(shard, "push", [len(keys), *keys, *args])
            except RedisLayerUnavailable as exc:
                errors.append(exc)
                continue
            for index, ok in zip(indexes, queued, strict=True):
                flags[index] = bool(ok)
        if errors:
            raise errors[0]
        return flags

    def _pop_sync(self, by_shard: dict[int, list[str]], limit: int) -> list[tuple[str, dict]]:
        if len(by_shard) == 1:  # the usual case, without the bookkeeping of several shards
            [(shard, queues)] = by_shard.items()
            try:
                return self._pop_shard_sync(shard, queues, limit)
            except RedisLayerUnavailable as exc:
                self._mark_down(shard, exc)
                raise
        received: list[tuple[str, dict]] = []
        errors: list[BaseException] = []
        shards = list(by_shard)
        random.shuffle(shards)
        for shard in shards:
            try:
                received += self._pop_shard_sync(shard, by_shard[shard], limit - len(received))
            except RedisLayerUnavailable as exc:
                errors.append(exc)
                self._mark_down(shard, exc)
                continue
            if len(received) >= limit:
                break
        self._raise_if_all_failed(errors, len(shards))
        return received

    def _pop_shard_sync(self, shard: int, queues: list[str],
                        limit: int) -> list[tuple[str, dict]]:
        call = self._direct.call
        with self._guard(shard):
            if self._native_pop_for(queues):
                keys = self._shuffled_keys(queues)
                try:
                    while True:
                        popped = call(shard, "LMPOP", len(keys), *keys, "LEFT", "COUNT", limit)
                        if popped is None:
                            return []
                        received = [item for item in map(self._decode_entry, popped[1])
                                    if item is not None]
                        if received:  # else all were expired: look behind them
                            return received
                except redis.exceptions.ResponseError as exc:
                    self._native_unsupported(exc)
            keys, args = self._pop_plan(queues, limit)
            return self._decode_all(self._evalsha_args(shard, "pop", [len(keys), *keys, *args]))

    def _block_pop_sync(self, shard: int, queues: list[str], limit: int,
                        timeout: float) -> list[bytes]:
        """Wait on a shard's queues for up to ``limit`` entries (live or not)."""
        call = self._direct.call
        keys = self._shuffled_keys(queues)
        timeout = max(timeout, 0.01)
        with self._guard(shard):
            entries: list[bytes] = []
            if self._native_pop:
                try:
                    popped = call(shard, "BLMPOP", timeout, len(keys), *keys, "LEFT",
                                  "COUNT", limit)
                    entries = popped[1] if popped else []
                except redis.exceptions.ResponseError as exc:
                    self._native_unsupported(exc)
            if not self._native_pop:
                popped = call(shard, "BLPOP", *keys, timeout)
                entries = [popped[1]] if popped else []
            uncount = self._uncount_plan(entries)
            if uncount is not None:
                keys, channels = uncount
                try:
                    self._evalsha_args(shard, "uncount", [len(keys), *keys, *channels])
                except redis.exceptions.RedisError as exc:
                    self._uncount_failed(shard, exc)
        return entries

    def _evalsha_args(self, shard: int, name: str, args: list) -> Any:
        """Run a script on this thread's connection to ``shard``; ``args`` is ``numkeys,
        *keys, *argv``. Only a server that lacks the script (restarted, flushed) pays for
        loading it."""
        script = self._scripts[name]
        try:
            reply = self._direct.call(shard, "EVALSHA", script.sha, *args)
        except redis.exceptions.NoScriptError:
            self._direct.call(shard, "SCRIPT", "LOAD", script.script)
            reply = self._direct.call(shard, "EVALSHA", script.sha, *args)
        self._direct.mark_scripts_known(shard)
        return reply

    def _wait_any_shard_sync(self, by_shard: dict[int, list[str]], remaining: float) -> None:
        """Block on every shard at once (channels_redis#50: no shard may stall another).

        Each shard gets one blocking pop in a worker thread; the first entry wakes the caller,
        and entries the other pops bring in later are stashed for the next receive.
        """
        futures = []
        with self._lock:
            if self._executor is None:
                # Each waiting pop holds a thread for up to blocking_timeout: a pop queued
                # behind others would wake its reader that late, so allow plenty (threads
                # are only created as needed).
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=MAX_WAITING_POPS, thread_name_prefix="channels-redis-pop")
            for shard, queues in by_shard.items():
                key = (shard, tuple(sorted(queues)))
                future = self._inflight.get(key)
                if future is None or future.cancelled():  # cancelled: by an earlier close()
                    future = self._executor.submit(self._pop_into_stash, key, shard, queues)
                    self._inflight[key] = future
                futures.append(future)
        waiter = self._watch_stash([q for queues in by_shard.values() for q in queues])
        try:
            done, _ = concurrent.futures.wait([*futures, waiter], timeout=remaining,
                                              return_when=concurrent.futures.FIRST_COMPLETED)
        finally:
            self._unwatch_stash(waiter)
        shards = list(by_shard)
        failed = [future for future in done if future is not waiter
                  and not future.cancelled() and future.exception() is not None]
        for future in failed:
            self._mark_down(shards[futures.index(future)], future.exception())
        self._raise_if_all_failed([future.exception() for future in failed], len(futures))

    def _pop_into_stash(self, key: tuple, shard: int, queues: list[str]) -> None:
        # Counted once running (a pop close() cancels before it starts never runs its finally).
        self._count_pending_pop(queues, 1)
        try:
            # One entry at a time: whatever this pop takes waits in this process, so leave the
            # rest in Redis for other readers.
            for entry in self._block_pop_sync(shard, queues, 1, self.blocking_timeout):
                self._stash_entry(entry)
        finally:
            with self._lock:
                self._inflight.pop(key, None)
            self._count_pending_pop(queues, -1)

    async def _evalsha_args_async(self, state: _AsyncState, shard: int, name: str,
                                  args: list) -> Any:
        """``_evalsha_args`` from an event loop, on that loop's connections."""
        script = state.scripts[name]
        try:
            return await state.conns.call(shard, "EVALSHA", script.sha, *args)
        except redis.exceptions.NoScriptError:
            await state.conns.call(shard, "SCRIPT", "LOAD", script.script)
            return await state.conns.call(shard, "EVALSHA", script.sha, *args)

    def new_channel(self, pattern: str) -> str:
        validate_new_channel_pattern(pattern)
        while True:
            name = pattern + random_suffix()
            shard = self._shard_of(name)
            with self._guard(shard):
                if not self._channel_exists_sync(shard, name):
                    return name

    def _channel_exists_sync(self, shard: int, name: str) -> bool:
        client = self._clients[shard]
        if is_process_channel(name):
            return bool(client.hexists(self._counts_key(name), name))
        return bool(client.exists(self._queue_key(name)))

    def group_add(self, group: str, channel: str) -> None:
        validate_group_name(group)
        validate_channel_name(channel)
        shard = self._shard_of(group)
        with self._guard(shard):
            pipe = self._clients[shard].pipeline(transaction=False)
            self._group_add_commands(pipe, group, channel)
            pipe.execute()

    def group_discard(self, group: str, channel: str) -> None:
        validate_group_name(group)
        validate_channel_name(channel)
        shard = self._shard_of(group)
        with self._guard(shard):
            pipe = self._clients[shard].pipeline(transaction=False)
            self._group_discard_commands(pipe, group, channel)
            pipe.execute()

    def group_channels(self, group: str) -> list[str]:
        validate_group_name(group)
        shard = self._shard_of(group)
        with self._guard(shard):
            members = self._scripts["group_members"](*self._members_call(group),
                                                     client=self._clients[shard])
        return [member.decode("ascii") for member in members]

    def send_group(self, group: str, message: dict) -> None:
        """One script call on the group's shard, plus one per other shard holding members."""
        payload, deadline, now_ms = self._group_send_plan(group, message)
        shard = self._shard_of(group)
        with self._guard(shard):
            keys, args = self._group_send_call(group, shard, payload, deadline, now_ms)
            reply = self._evalsha_args(shard, "group_send", [len(keys), *keys, *args])
        for other, (keys, args) in self._remote_plans(reply, payload, deadline, now_ms).items():
            try:
                with self._guard(other):
                    self._evalsha_args(other, "push", [len(keys), *keys, *args])
            except RedisLayerUnavailable as exc:
                self._group_shard_missed(group, other, exc)

    def _group_shard_missed(self, group: str, shard: int, exc: BaseException) -> None:
        # Like a full member, a member on a shard that is down misses this message: the group
        # send still reaches everyone else (SPEC §1: a down shard affects only its part).
        logger.warning("group %s: members on shard %s missed a message: %s", group,
                       self._shard_label(shard), exc)

    def flush(self) -> None:
        """Delete this prefix's keys on every shard (SCAN, never KEYS or FLUSHDB)."""
        pattern = _glob_escape(self.prefix) + "*"
        for shard, client in enumerate(self._clients):
            with self._guard(shard):
                batch = []
                for key in client.scan_iter(match=pattern, count=1000):
                    batch.append(key)
                    if len(batch) >= 1000:
                        client.unlink(*batch)
                        batch = []
                if batch:
                    client.unlink(*batch)
        with self._lock:
            self._stash.clear()

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

    def close(self) -> None:
        """Hand stashed entries back to Redis and release the synchronous connections."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            # Let in-flight blocking pops end (within blocking_timeout) so that whatever they
            # take lands in the stash and goes back to Redis below, instead of being lost.
            executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            self._inflight.clear()
        for shard, channel, commands in self._stash_return_plan():
            try:
                pipe = self._clients[shard].pipeline(transaction=False)
                for command in commands:
                    pipe.execute_command(*command)
                pipe.execute()
            except redis.exceptions.RedisError:
                logger.warning("could not return a received message on %s to Redis", channel)
        self._direct.close()
        for client in self._clients:
            client.close()

    def _stash_return_plan(self) -> list[tuple[int, str, list[tuple]]]:
        """Commands putting stashed entries back at the head of their queues, oldest first."""
        with self._lock:
            stash, self._stash = self._stash, {}
        plan = []
        now_ms = time.time() * 1000
        for entries in stash.values():
            for entry in reversed(entries):
                channel = _entry_channel(entry)
                if not channel or not entry[:14].isdigit() or int(entry[:14]) <= now_ms:
                    continue  # expired (or unreadable): it would never be delivered
                # The queue may have gone (it empties when popped): give it a TTL again, or
                # this entry of a process that is closing would stay in Redis for ever.
                ttl = self._ttl()
                commands: list[tuple] = [("LPUSH", self._queue_key(channel), entry),
                                         ("EXPIRE", self._queue_key(channel), ttl)]
                if is_process_channel(channel):
                    commands += [("HINCRBY", self._counts_key(channel), channel, 1),
                                 ("EXPIRE", self._counts_key(channel), ttl)]
                plan.append((self._shard_of(channel), channel, commands))
        return plan

    # -- asyncio API --------------------------------------------------------------------------

    def _loop_state(self) -> _AsyncState:
        loop = asyncio.get_running_loop()
        state = self._async.get(loop)
        if state is None:
            clients = [self._make_async_client(i) for i in range(self.ring_size)]
            scripts = {name: clients[0].register_script(source)
                       for name, source in _SCRIPTS.items()}
            conns = LoopConnections([client.connection_pool for client in clients])
            state = self._async[loop] = _AsyncState(clients, scripts, conns)
        return state

    async def send_async(self, channel: str, message: dict) -> None:
        shard, args = self._send_plan(channel, message)
        state = self._loop_state()
        with self._guard(shard):
            queued = await self._evalsha_args_async(state, shard, "send", args)
        if not queued:
            raise ChannelFull(channel)

    async def send_many_async(self, messages: Sequence[tuple[str, dict]]) -> list[bool]:
        """:meth:`send_many` from an event loop: one call per shard, run concurrently."""
        plans = self._send_many_plans(messages)
        state = self._loop_state()
        flags = [False] * len(messages)

        async def push(shard: int, indexes: list[int], keys: list, args: list) -> None:
            with self._guard(shard):
                queued = await self._evalsha_args_async(state, shard, "push",
                                                        [len(keys), *keys, *args])
            for index, ok in zip(indexes, queued, strict=True):
                flags[index] = bool(ok)

        results = await asyncio.gather(*(push(shard, *plan) for shard, plan in plans.items()),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return flags

    async def receive_async(self, channels: list[str]) -> tuple:
        batch = await self.receive_batch_async(channels, 1)
        return batch[0] if batch else (None, None)

    async def receive_batch_async(self, channels: list[str],
                                  limit: int) -> list[tuple[str, dict]]:
        queues, by_shard = self._receive_plan(channels)
        _check_limit(limit)
        state = self._loop_state()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.blocking_timeout
        plan_key = tuple(queues)
        while True:
            if state.orphans:  # they may be bringing this caller's messages
                await asyncio.wait(list(state.orphans), timeout=max(deadline - loop.time(), 0))
            received = self._take_stash(queues, limit)
            if received:
                if len(received) >= limit > 1:  # busy again: a script pop takes more at once
                    state.idle.discard(plan_key)
                return received
            usable = self._usable(by_shard)
            # Replies trickling in (a server's usual case) would cost a non-blocking pop that
            # comes back empty before every blocking one: skip it while the channels are idle.
            if len(usable) != 1 or plan_key not in state.idle:
                # The pop runs as a task of its own: if this caller is cancelled while Redis is
                # answering, the entries it already popped go to the stash instead of
                # vanishing with the cancelled read.
                pop = asyncio.ensure_future(self._pop_async(state, usable, limit))
                try:
                    received = self._decode_all(await asyncio.shield(pop))
                except asyncio.CancelledError:
                    self._adopt_orphan(state, pop)
                    raise
                if received:
                    state.idle.discard(plan_key)
                    return received
                if len(state.idle) >= 1000:
                    state.idle.clear()
                state.idle.add(plan_key)
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            # The blocking pops run as tasks of their own, which outlive a caller that is
            # cancelled mid-wait: an entry Redis hands over at that instant lands in the stash
            # instead of vanishing with a cancelled command.
            await self._wait_any_shard_async(state, usable, remaining,
                                             limit if len(usable) == 1 else 1)

    def _adopt_orphan(self, state: _AsyncState, pop: asyncio.Future) -> None:
        if pop.done():
            if not pop.cancelled() and pop.exception() is None:
                for entry in pop.result():
                    self._stash_entry(entry)
            return
        state.orphans.add(pop)

        def finished(done: asyncio.Future) -> None:
            state.orphans.discard(done)
            if not done.cancelled() and done.exception() is None:
                for entry in done.result():
                    self._stash_entry(entry)

        pop.add_done_callback(finished)

    async def _pop_async(self, state: _AsyncState, by_shard: dict[int, list[str]],
                         limit: int) -> list[bytes]:
        """Raw entries, at least one of them live if any are (decoded by the caller)."""
        received: list[bytes] = []
        errors: list[BaseException] = []
        shards = list(by_shard)
        random.shuffle(shards)
        for shard in shards:
            try:
                received += await self._pop_shard_async(state, shard, by_shard[shard],
                                                        limit - len(received))
            except RedisLayerUnavailable as exc:
                errors.append(exc)
                self._mark_down(shard, exc)
                continue
            if len(received) >= limit:
                break
        self._raise_if_all_failed(errors, len(shards))
        return received

    async def _pop_shard_async(self, state: _AsyncState, shard: int, queues: list[str],
                               limit: int) -> list[bytes]:
        with self._guard(shard):
            if self._native_pop_for(queues):
                keys = self._shuffled_keys(queues)
                try:
                    while True:
                        popped = await self._pop_call_async(
                            state, shard, ("LMPOP", len(keys), *keys, "LEFT", "COUNT", limit))
                        if popped is None:
                            return []
                        now_ms = time.time() * 1000
                        # Only expired entries: look behind them (unreadable ones count as
                        # live here and are dropped when decoded).
                        if any(not entry[:14].isdigit() or int(entry[:14]) > now_ms
                               for entry in popped[1]):
                            return popped[1]
                except redis.exceptions.ResponseError as exc:
                    self._native_unsupported(exc)
            keys, args = self._pop_plan(queues, limit)
            command = ("EVALSHA", state.scripts["pop"].sha, len(keys), *keys, *args)
            try:
                return await self._pop_call_async(state, shard, command)
            except redis.exceptions.NoScriptError:
                return await self._evalsha_args_async(state, shard, "pop",
                                                      [len(keys), *keys, *args])

    async def _block_pop_async(self, state: _AsyncState, shard: int, queues: list[str],
                               limit: int, timeout: float) -> list[bytes]:
        """Blocking pop; the entries come back at once.

        Entries of process channels owe an update of their per-socket counts. It is not sent
        as a command of its own (a second round trip per reply, on a server's busiest path)
        but in the same write as the next pop on this shard, or by a timer after
        ``UNCOUNT_DELAY``; until then the counts are high by what is in flight, which makes a
        send wait its turn (``ChannelFull``) and does not drift (``redis_scripts.py``). One
        corner: a send that finds such a socket "full" while its process queue is in fact
        empty resets the counts, and the late update then leaves them low by what was in
        flight (at most one batch), so that socket may hold that many more than its capacity
        until its queue next drains.
        """
        keys = self._shuffled_keys(queues)
        timeout = max(timeout, 0.01)
        with self._guard(shard):
            entries: list[bytes] = []
            if self._native_pop:
                try:
                    popped = await self._pop_call_async(
                        state, shard, ("BLMPOP", timeout, len(keys), *keys, "LEFT", "COUNT",
                                       limit))
                    entries = popped[1] if popped else []
                except redis.exceptions.ResponseError as exc:
                    self._native_unsupported(exc)
            if not self._native_pop:
                popped = await self._pop_call_async(state, shard, ("BLPOP", *keys, timeout))
                entries = [popped[1]] if popped else []
            uncount = self._uncount_plan(entries)
            if uncount is not None:
                self._owe_uncount(state, shard, uncount)
        return entries

    async def _pop_call_async(self, state: _AsyncState, shard: int, command: tuple) -> Any:
        """A pop on ``shard``, preceded in the same write by the count updates owed there."""
        owed = state.uncounts.pop(shard, None)
        if not owed:
            return await state.conns.call(shard, *command, blocking=command[0] in _BLOCKING)
        sha = state.scripts["uncount"].sha
        commands = [("EVALSHA", sha, len(keys), *keys, *channels) for keys, channels in owed]
        try:
            *updates, reply = await state.conns.pipeline(shard, [*commands, command],
                                                         blocking=command[0] in _BLOCKING)
        except Exception as exc:
            # Sent or not, unknown: the counts are put right when the queue is next seen empty.
            self._uncount_failed(shard, exc)
            raise
        for (keys, channels), update in zip(owed, updates, strict=True):
            try:
                if isinstance(update, redis.exceptions.NoScriptError):
                    await self._evalsha_args_async(state, shard, "uncount",
                                                   [len(keys), *keys, *channels])
                elif isinstance(update, redis.exceptions.ResponseError):
                    raise update
            except redis.exceptions.RedisError as exc:  # never at the cost of what was popped
                self._uncount_failed(shard, exc)
        if isinstance(reply, redis.exceptions.ResponseError):
            raise reply
        return reply

    def _owe_uncount(self, state: _AsyncState, shard: int, uncount: tuple[list, list]) -> None:
        owed = state.uncounts.setdefault(shard, [])
        owed.append(uncount)
        if shard not in state.uncount_timers:
            state.uncount_timers.add(shard)
            asyncio.get_running_loop().call_later(UNCOUNT_DELAY, self._uncount_due, state,
                                                  shard)

    def _uncount_due(self, state: _AsyncState, shard: int) -> None:
        """Timer: send the count updates no pop has taken along since (an idle reader)."""
        state.uncount_timers.discard(shard)
        if not state.uncounts.get(shard):
            return
        task = asyncio.ensure_future(self._send_uncounts(state, shard))
        state.uncounting.add(task)
        task.add_done_callback(state.uncounting.discard)

    async def _send_uncounts(self, state: _AsyncState, shard: int) -> None:
        for keys, channels in state.uncounts.pop(shard, None) or []:
            try:
                with self._guard(shard):
                    await self._evalsha_args_async(state, shard, "uncount",
                                                   [len(keys), *keys, *channels])
            except redis.exceptions.RedisError as exc:
                self._uncount_failed(shard, exc)

    async def _wait_any_shard_async(self, state: _AsyncState, by_shard: dict[int, list[str]],
                                    remaining: float, count: int) -> None:
        """Block on every shard at once; entries go to the stash (see the sync version)."""
        tasks = []
        for shard, queues in by_shard.items():
            key = (shard, tuple(sorted(queues)))
            task = state.inflight.get(key)
            if task is None:
                self._count_pending_pop(queues, 1)
                task = asyncio.ensure_future(self._pop_async_into_stash(state, key, shard,
                                                                        queues, count))
                # A pop whose caller has gone may fail unobserved: mark its error as seen.
                task.add_done_callback(lambda done: done.cancelled() or done.exception())
                state.inflight[key] = task
            tasks.append(task)
        # Woken by an entry reaching the stash (set directly by the pop's own step: a reply
        # is handed over one pass of the loop after Redis answers), or by a pop ending without
        # one (timed out, failed). Not ``asyncio.wait``: its callbacks would cost two more
        # passes of the loop on every wake-up of a server's reply loop.
        waiter = self._watch_stash_async([q for queues in by_shard.values() for q in queues])
        wake = waiter.future

        def ended(_task: asyncio.Task) -> None:
            _set_woken(wake)

        for task in tasks:
            task.add_done_callback(ended)
        try:
            async with asyncio.timeout(remaining):
                await wake
        except TimeoutError:
            pass
        finally:
            self._unwatch_stash(waiter)
            wake.cancel()
            for task in tasks:
                task.remove_done_callback(ended)
        shards = list(by_shard)
        failed = [task for task in tasks if task.done()
                  and not task.cancelled() and task.exception() is not None]
        for task in failed:
            self._mark_down(shards[tasks.index(task)], task.exception())
        self._raise_if_all_failed([task.exception() for task in failed], len(tasks))

    async def _pop_async_into_stash(self, state: _AsyncState, key: tuple, shard: int,
                                    queues: list[str], count: int) -> None:
        try:
            entries = await self._block_pop_async(state, shard, queues, count,
                                                  self.blocking_timeout)
        finally:
            # This pop takes nothing more: a new receive may start its own.
            state.inflight.pop(key, None)
            self._count_pending_pop(queues, -1)
        for entry in entries:
            self._stash_entry(entry)

    async def new_channel_async(self, pattern: str) -> str:
        validate_new_channel_pattern(pattern)
        state = self._loop_state()
        while True:
            name = pattern + random_suffix()
            shard = self._shard_of(name)
            client = state.clients[shard]
            with self._guard(shard):
                if is_process_channel(name):
                    exists = await client.hexists(self._counts_key(name), name)
                else:
                    exists = await client.exists(self._queue_key(name))
            if not exists:
                return name

    async def group_add_async(self, group: str, channel: str) -> None:
        validate_group_name(group)
        validate_channel_name(channel)
        shard = self._shard_of(group)
        state = self._loop_state()
        with self._guard(shard):
            pipe = state.clients[shard].pipeline(transaction=False)
            self._group_add_commands(pipe, group, channel)
            await pipe.execute()

    async def group_discard_async(self, group: str, channel: str) -> None:
        validate_group_name(group)
        validate_channel_name(channel)
        shard = self._shard_of(group)
        state = self._loop_state()
        with self._guard(shard):
            pipe = state.clients[shard].pipeline(transaction=False)
            self._group_discard_commands(pipe, group, channel)
            await pipe.execute()

    async def group_channels_async(self, group: str) -> list[str]:
        validate_group_name(group)
        shard = self._shard_of(group)
        state = self._loop_state()
        with self._guard(shard):
            members = await state.scripts["group_members"](*self._members_call(group),
                                                           client=state.clients[shard])
        return [member.decode("ascii") for member in members]

    async def send_group_async(self, group: str, message: dict) -> None:
        payload, deadline, now_ms = self._group_send_plan(group, message)
        shard = self._shard_of(group)
        state = self._loop_state()
        with self._guard(shard):
            keys, args = self._group_send_call(group, shard, payload, deadline, now_ms)
            reply = await self._evalsha_args_async(state, shard, "group_send",
                                                   [len(keys), *keys, *args])

        async def push(other: int, keys: list, args: list) -> None:
            try:
                with self._guard(other):
                    await self._evalsha_args_async(state, other, "push",
                                                   [len(keys), *keys, *args])
            except RedisLayerUnavailable as exc:
                self._group_shard_missed(group, other, exc)

        plans = self._remote_plans(reply, payload, deadline, now_ms)
        await asyncio.gather(*(push(other, keys, args)
                               for other, (keys, args) in plans.items()))

    async def close_async(self) -> None:
        """Release the connections this event loop opened (call from that loop).

        Blocking pops still in flight end first (within ``blocking_timeout``), and anything
        they or earlier pops took for callers that had gone is handed back to Redis.
        """
        state = self._async.pop(asyncio.get_running_loop(), None)
        if state is not None:
            # Cancelling a blocking pop could drop an entry Redis already handed over: let the
            # pops end (within blocking_timeout); what they take stays in the stash.
            pending = [*state.inflight.values(), *state.orphans, *state.uncounting]
            if pending:
                await asyncio.wait(pending)
            for shard in list(state.uncounts):
                await self._send_uncounts(state, shard)
            for shard, channel, commands in self._stash_return_plan():
                try:
                    pipe = state.clients[shard].pipeline(transaction=False)
                    for command in commands:
                        pipe.execute_command(*command)
                    await pipe.execute()
                except redis.exceptions.RedisError:
                    logger.warning("could not return a received message on %s to Redis",
                                   channel)
            await state.conns.close()
            for client in state.clients:
                await client.aclose()


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


class RedisLocalChannelLayer(RedisChannelLayer):
    """Channels 1 name kept for settings: here every channel, local or not, lives in Redis.

    asgi_redis routed normal channels through a machine-local IPC layer; one Redis round trip
    per send makes that detour unnecessary, and it required a worker on every machine.
    """


def _glob_escape(text: str) -> str:
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


def _check_limit(limit: Any) -> None:
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"limit must be a positive int: {limit!r}")


def _entry_channel(entry: bytes) -> str:
    """The full channel name framed in a queue entry ('' if the entry is not one of ours)."""
    try:
        return entry[15:15 + entry[14]].decode("ascii")
    except (IndexError, UnicodeDecodeError):
        return ""


class _LoopWaiter:
    """A stash waiter of a coroutine: its loop and the asyncio future to resolve there."""

    __slots__ = ("loop", "future")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future) -> None:
        self.loop = loop
        self.future = future


def _resolve(waiter: concurrent.futures.Future | _LoopWaiter) -> None:
    if isinstance(waiter, _LoopWaiter):
        if asyncio._get_running_loop() is waiter.loop:
            _set_woken(waiter.future)
        else:
            try:
                waiter.loop.call_soon_threadsafe(_set_woken, waiter.future)
            except RuntimeError:  # that loop is closed: nobody is waiting any more
                pass
        return
    try:
        waiter.set_result(None)
    except concurrent.futures.InvalidStateError:  # already woken, or given up on
        pass


def _set_woken(future: asyncio.Future) -> None:
    if not future.done():  # already woken, or given up on
        future.set_result(None)
