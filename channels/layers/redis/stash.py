"""The stash: entries a pop took for a caller that had already returned.

A blocking pop may outlive the receive that started it (the caller timed out, was cancelled,
or another shard answered first). What it brings back has left Redis, so it must not be lost:
it waits here and is handed out first by the next receive of its queue, and ``close()`` /
``close_async()`` push whatever is left back to the head of its queue in Redis.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections import Counter, deque
from typing import Any

from channels.layers.base import is_process_channel, non_local_name
from channels.layers.redis.codec import entry_channel


class LoopWaiter:
    """A stash waiter of a coroutine: its loop and the asyncio future to resolve there."""

    __slots__ = ("loop", "future")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future) -> None:
        self.loop = loop
        self.future = future


Waiter = concurrent.futures.Future | LoopWaiter


def resolve(waiter: Waiter) -> None:
    """Wake ``waiter`` (from any thread)."""
    if isinstance(waiter, LoopWaiter):
        if asyncio._get_running_loop() is waiter.loop:
            set_woken(waiter.future)
        else:
            try:
                waiter.loop.call_soon_threadsafe(set_woken, waiter.future)
            except RuntimeError:  # that loop is closed: nobody is waiting any more
                pass
        return
    try:
        waiter.set_result(None)
    except concurrent.futures.InvalidStateError:  # already woken, or given up on
        pass


def set_woken(future: asyncio.Future) -> None:
    if not future.done():  # already woken, or given up on
        future.set_result(None)


class Stash:
    """The stash and the receives waiting on it (a part of :class:`RedisChannelLayer`).

    Shared by every thread and event loop using the layer, under the layer's ``_lock``. Relies
    on the layer's key names, ``_shard_of``, ``_ttl`` and ``_decode_all``.
    """

    _lock: threading.Lock
    _stash: dict[str, deque[bytes]]
    _stash_waiters: dict[Waiter, frozenset[str]]
    _pending_pops: Counter[str]

    def _init_stash(self) -> None:
        # Queue name -> its stashed entries, oldest first.
        self._stash = {}
        # Blocking receives waiting while another caller's pop may bring their message into
        # the stash (waiter -> its queues), and how many such pops run per queue.
        self._stash_waiters = {}
        self._pending_pops = Counter()

    def _stash_entry(self, entry: bytes) -> None:
        queue = non_local_name(entry_channel(entry))
        with self._lock:
            self._stash.setdefault(queue, deque()).append(entry)
            woken = [waiter for waiter, queues in self._stash_waiters.items() if queue in queues]
        for waiter in woken:
            resolve(waiter)

    def _watch_stash(self, queues: list[str], waiter: Waiter | None = None) -> Any:
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
                resolve(waiter)
        return waiter

    def _watch_stash_async(self, queues: list[str]) -> LoopWaiter:
        """``_watch_stash`` for a coroutine: its ``future`` belongs to the running loop.

        The stash is filled by the loop's own pops far more often than by another thread's;
        resolved from the loop's thread, the future is set directly, where a concurrent future
        wrapped for asyncio would cost a write to the loop's self-pipe (two system calls and a
        pass of the loop) on every wake-up of a server's reply loop.
        """
        loop = asyncio.get_running_loop()
        return self._watch_stash(queues, LoopWaiter(loop, loop.create_future()))

    def _unwatch_stash(self, waiter: Waiter) -> None:
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

    def _stash_return_plan(self) -> list[tuple[int, str, list[tuple]]]:
        """Commands putting stashed entries back at the head of their queues, oldest first."""
        with self._lock:
            stash, self._stash = self._stash, {}
        plan = []
        now_ms = time.time() * 1000
        for entries in stash.values():
            for entry in reversed(entries):
                channel = entry_channel(entry)
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
