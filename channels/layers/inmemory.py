"""In-memory channel layer: one process, any number of threads and event loops.

Messages are stored msgpacked, exactly as the Redis layer stores them, so a message that works
here works there (tuples become lists, nothing is shared by reference between sender and
receiver). One lock guards everything; blocked readers wait on a condition (threads) or on a
future woken through ``loop.call_soon_threadsafe`` (asyncio), so a send from any thread wakes
them at once with no polling.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from channels.layers.base import (
    BaseChannelLayer,
    ChannelFull,
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

Received = tuple[str | None, dict | None]

#: Channels whose statistics counters are kept before idle ones are forgotten.
MAX_COUNTED_CHANNELS = 10_000


@dataclass
class _Queue:
    """Messages of one queue key: a channel, or a process prefix for all its ``!`` channels."""

    # (deadline, sent_at, full channel name, msgpacked message), oldest first.
    entries: deque = field(default_factory=deque)
    # Full ``!`` channel name -> number of its entries queued here (per-socket capacity).
    per_channel: dict[str, int] = field(default_factory=dict)


@dataclass
class _Waiter:
    keys: frozenset[str]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future


@dataclass
class _Counters:
    messages_count: int = 0
    channel_full_count: int = 0


class InMemoryChannelLayer(BaseChannelLayer):
    """The layer for one process (``runserver``, tests, scripts). See ``docs/layers.md``."""

    # Everything is checked before the first message is queued; after that a send can only
    # find its channel full, which send_many reports per message.
    atomic_send_many = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._lock = threading.Lock()
        self._condition = threading.Condition(self._lock)
        self._queues: dict[str, _Queue] = {}
        # group -> {channel: time of the last group_add}
        self._groups: dict[str, dict[str, float]] = {}
        self._waiters: list[_Waiter] = []
        self._global = _Counters()
        self._channel_counters: dict[str, _Counters] = {}
        self._next_sweep = time.time() + self.expiry

    # -- sending ----------------------------------------------------------------------------

    def send(self, channel: str, message: dict) -> None:
        validate_channel_name(channel)
        payload = self.serialize(message)
        with self._lock:
            self._append(channel, payload, raise_full=True)

    def _append(self, channel: str, payload: bytes, raise_full: bool,
                capacity: int | None = None) -> bool:
        """Queue one payload (lock held). Returns False when full and ``raise_full`` is off.
        ``capacity`` overrides the channel's own (group sends use the member capacity)."""
        if capacity is None:
            capacity = self.get_capacity(channel)
        key = non_local_name(channel)
        now = time.time()
        if now >= self._next_sweep:
            self._sweep(now)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue()
        self._drop_expired(queue, now)
        counters = self._counters(key)
        if is_process_channel(channel):
            full = (queue.per_channel.get(channel, 0) >= capacity
                    or len(queue.entries) >= self.process_capacity)
        else:
            full = len(queue.entries) >= capacity
        if full:
            counters.channel_full_count += 1
            self._global.channel_full_count += 1
            if raise_full:
                raise ChannelFull(channel)
            return False
        queue.entries.append((now + self.expiry, now, channel, payload))
        if is_process_channel(channel):
            queue.per_channel[channel] = queue.per_channel.get(channel, 0) + 1
        counters.messages_count += 1
        self._global.messages_count += 1
        self._condition.notify_all()
        self._wake_async(key)
        return True

    def _counters(self, key: str) -> _Counters:
        counters = self._channel_counters.get(key)
        if counters is None:
            if len(self._channel_counters) >= MAX_COUNTED_CHANNELS:
                # Single-reader channels are new names all the time (one per request body):
                # forget the counters of channels that hold nothing, so memory stays bounded.
                self._channel_counters = {name: kept for name, kept
                                          in self._channel_counters.items()
                                          if name in self._queues}
            counters = self._channel_counters[key] = _Counters()
        return counters

    def _wake_async(self, key: str) -> None:
        for waiter in self._waiters:
            if key in waiter.keys:
                try:
                    waiter.loop.call_soon_threadsafe(_resolve, waiter.future)
                except RuntimeError:  # its loop is closed: nobody is waiting any more
                    pass

    # -- expiry -------------------------------------------------------------------------------

    def _drop_expired(self, queue: _Queue, now: float) -> None:
        # One expiry for all messages means deadlines are in queue order: only heads expire.
        entries = queue.entries
        while entries and entries[0][0] <= now:
            _, _, channel, _ = entries.popleft()
            self._forget_entry(queue, channel)

    def _sweep(self, now: float) -> None:
        """Drop expired messages of queues nobody reads any more (lock held).

        Expiry is otherwise applied when a queue is touched; a single-reader channel that is
        never read again (one per request body) would keep its queue for ever. Once per
        ``expiry`` at most, so the cost per send stays constant.
        """
        self._next_sweep = now + self.expiry
        for key in list(self._queues):
            queue = self._queues[key]
            self._drop_expired(queue, now)
            if not queue.entries and not queue.per_channel:
                del self._queues[key]
        for group in list(self._groups):
            if not self._live_members(group):
                del self._groups[group]

    @staticmethod
    def _forget_entry(queue: _Queue, channel: str) -> None:
        if channel in queue.per_channel:
            remaining = queue.per_channel[channel] - 1
            if remaining:
                queue.per_channel[channel] = remaining
            else:
                del queue.per_channel[channel]

    # -- receiving ----------------------------------------------------------------------------

    def _pop(self, keys: list[str], limit: int) -> list[tuple[str, bytes]]:
        """Pop up to ``limit`` live messages (lock held), visiting keys in random order."""
        order = list(keys)
        random.shuffle(order)  # fairness: a busy channel must not starve a quiet one
        now = time.time()
        popped: list[tuple[str, bytes]] = []
        for key in order:
            queue = self._queues.get(key)
            if queue is None:
                continue
            self._drop_expired(queue, now)
            while queue.entries and len(popped) < limit:
                _, _, channel, payload = queue.entries.popleft()
                self._forget_entry(queue, channel)
                popped.append((channel, payload))
            if not queue.entries and not queue.per_channel:
                del self._queues[key]
            if len(popped) >= limit:
                break
        return popped

    def receive(self, channels: list[str], block: bool = False) -> Received:
        batch = self.receive_batch(channels, 1, block=block)
        return batch[0] if batch else (None, None)

    def receive_batch(self, channels: list[str], limit: int,
                      block: bool = False) -> list[tuple[str, dict]]:
        keys = validate_channel_names(channels)
        _check_limit(limit)
        deadline = time.monotonic() + self.blocking_timeout
        with self._condition:
            while True:
                popped = self._pop(keys, limit)
                remaining = deadline - time.monotonic()
                if popped or not block or remaining <= 0:
                    break
                self._condition.wait(remaining)
        return [(channel, deserialize_message(payload)) for channel, payload in popped]

    async def receive_async(self, channels: list[str]) -> Received:
        batch = await self.receive_batch_async(channels, 1)
        return batch[0] if batch else (None, None)

    async def receive_batch_async(self, channels: list[str],
                                  limit: int) -> list[tuple[str, dict]]:
        keys = validate_channel_names(channels)
        _check_limit(limit)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.blocking_timeout
        key_set = frozenset(keys)
        while True:
            future = loop.create_future()
            waiter = _Waiter(key_set, loop, future)
            with self._lock:
                popped = self._pop(keys, limit)
                if not popped:
                    self._waiters.append(waiter)
            if popped:
                return [(channel, deserialize_message(payload)) for channel, payload in popped]
            remaining = deadline - loop.time()
            try:
                if remaining > 0:
                    await asyncio.wait_for(future, remaining)
            except TimeoutError:
                pass
            finally:
                with self._lock:
                    self._waiters.remove(waiter)
            if loop.time() >= deadline:
                with self._lock:
                    popped = self._pop(keys, limit)
                return [(channel, deserialize_message(payload)) for channel, payload in popped]

    async def send_async(self, channel: str, message: dict) -> None:
        self.send(channel, message)

    # -- new channels -------------------------------------------------------------------------

    def new_channel(self, pattern: str) -> str:
        validate_new_channel_pattern(pattern)
        with self._lock:
            while True:
                name = pattern + random_suffix()
                queue = self._queues.get(non_local_name(name))
                if queue is None or (name not in queue.per_channel
                                     and not any(e[2] == name for e in queue.entries)):
                    return name

    async def new_channel_async(self, pattern: str) -> str:
        return self.new_channel(pattern)

    # -- groups -------------------------------------------------------------------------------

    def group_add(self, group: str, channel: str) -> None:
        validate_group_name(group)
        validate_channel_name(channel)
        with self._lock:
            self._groups.setdefault(group, {})[channel] = time.time()

    def group_discard(self, group: str, channel: str) -> None:
        validate_group_name(group)
        validate_channel_name(channel)
        with self._lock:
            members = self._groups.get(group)
            if members is not None:
                members.pop(channel, None)
                if not members:
                    del self._groups[group]

    def _live_members(self, group: str) -> list[str]:
        members = self._groups.get(group)
        if not members:
            return []
        cutoff = time.time() - self.group_expiry
        for channel in [c for c, added in members.items() if added <= cutoff]:
            del members[channel]
        return list(members)

    def group_channels(self, group: str) -> list[str]:
        validate_group_name(group)
        with self._lock:
            return self._live_members(group)

    def send_group(self, group: str, message: dict) -> None:
        validate_group_name(group)
        payload = self.serialize(message)
        with self._lock:
            for channel in self._live_members(group):
                # The layer contract: a full member misses this message, the group send never fails.
                if not self._append(channel, payload, raise_full=False,
                                    capacity=self.group_member_capacity(channel)):
                    logger.debug("group %s: member %s is full, message skipped", group, channel)

    async def group_add_async(self, group: str, channel: str) -> None:
        self.group_add(group, channel)

    async def group_discard_async(self, group: str, channel: str) -> None:
        self.group_discard(group, channel)

    async def send_group_async(self, group: str, message: dict) -> None:
        self.send_group(group, message)

    # -- flush and statistics ---------------------------------------------------------------

    def flush(self) -> None:
        with self._lock:
            self._queues.clear()
            self._groups.clear()
            self._global = _Counters()
            self._channel_counters.clear()

    def global_statistics(self) -> dict[str, Any]:
        with self._lock:
            return {
                "messages_count": self._global.messages_count,
                "channel_full_count": self._global.channel_full_count,
                "messages_pending": sum(len(q.entries) for q in self._queues.values()),
            }

    def channel_statistics(self, channel: str) -> dict[str, Any]:
        validate_channel_name(channel)
        key = non_local_name(channel)
        with self._lock:
            counters = self._channel_counters.get(key, _Counters())
            queue = self._queues.get(key)
            now = time.time()
            if queue is not None:
                self._drop_expired(queue, now)
            entries = [e for e in (queue.entries if queue else ())
                       if key == channel or e[2] == channel]
            return {
                "messages_count": counters.messages_count,
                "channel_full_count": counters.channel_full_count,
                "messages_pending": len(entries),
                "messages_max_age": (now - entries[0][1]) if entries else 0,
            }


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


def _check_limit(limit: Any) -> None:
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"limit must be a positive int: {limit!r}")


# The Channels 1 / asgiref name of this class.
ChannelLayer = InMemoryChannelLayer
