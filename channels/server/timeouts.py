"""Per-connection and per-request deadlines checked by one periodic sweep.

Every HTTP connection and request has up to three deadlines (idle keep-alive, request head /
body stall, application response). As reactor ``callLater`` calls they cost a heap push, a
reschedule of the asyncio timer and a cancellation for almost every request, although nearly
none of them ever fires. Here a deadline is an entry in an insertion-ordered dict per duration:
arming, re-arming and cancelling are dict operations, and one reactor call, re-armed only while
deadlines exist, fires the expired ones. Entries of one duration expire in the order they were
armed, so a sweep only looks at the front of each dict.

Deadlines never fire early; they fire at most one sweep interval late, which is a tenth of the
shortest duration in use (at least 10 ms, at most 1 s).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("channels.server")

MIN_SWEEP_INTERVAL = 0.01
MAX_SWEEP_INTERVAL = 1.0


def _nothing() -> None:
    return None


class Deadline:
    """One re-armable deadline that calls ``callback`` once when it passes."""

    __slots__ = ("_sweeper", "callback", "due", "duration")

    def __init__(self, sweeper: DeadlineSweeper, callback: Callable[[], Any]) -> None:
        self._sweeper = sweeper
        self.callback = callback
        self.due: float | None = None
        self.duration: float | None = None

    def arm(self, duration: float) -> None:
        """Fire ``duration`` seconds from now (re-arming replaces an earlier arming)."""
        self._sweeper.arm(self, duration)

    def cancel(self) -> None:
        self._sweeper.cancel(self)

    def active(self) -> bool:
        return self.due is not None

    def close(self) -> None:
        """Cancel for good and drop the callback: the owner usually holds this deadline and the
        callback is the owner's bound method, a cycle only the cyclic GC would free."""
        self._sweeper.cancel(self)
        self.callback = _nothing


class DeadlineSweeper:
    """Fires expired :class:`Deadline` objects from a single periodic reactor call."""

    def __init__(self, reactor: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self.reactor = reactor
        self.clock = clock
        self._by_duration: dict[float, dict[Deadline, None]] = {}
        self._call: Any = None
        self._sweeping = False
        self._interval = MAX_SWEEP_INTERVAL

    def deadline(self, callback: Callable[[], Any]) -> Deadline:
        return Deadline(self, callback)

    def arm(self, deadline: Deadline, duration: float) -> None:
        if deadline.due is not None:
            self._by_duration.get(deadline.duration, {}).pop(deadline, None)
        bucket = self._by_duration.get(duration)
        if bucket is None:
            bucket = self._by_duration[duration] = {}
        deadline.duration = duration
        deadline.due = self.clock() + duration
        bucket[deadline] = None
        interval = min(max(duration / 10, MIN_SWEEP_INTERVAL), MAX_SWEEP_INTERVAL)
        if self._sweeping:
            return  # the sweep re-arms itself when it ends
        if self._call is None:
            self._interval = interval
            self._call = self.reactor.callLater(interval, self._sweep)
        elif interval < self._interval:
            self._interval = interval
            self._call.reset(interval)

    def cancel(self, deadline: Deadline) -> None:
        if deadline.due is not None:
            self._by_duration.get(deadline.duration, {}).pop(deadline, None)
            deadline.due = None

    def pending(self) -> int:
        return sum(len(bucket) for bucket in self._by_duration.values())

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _sweep(self) -> None:
        self._call = None
        self._sweeping = True
        try:
            self._fire_expired(self.clock())
        finally:
            self._sweeping = False
        if self._by_duration:
            shortest = min(self._by_duration)
            self._interval = min(max(shortest / 10, MIN_SWEEP_INTERVAL), MAX_SWEEP_INTERVAL)
            self._call = self.reactor.callLater(self._interval, self._sweep)

    def _fire_expired(self, now: float) -> None:
        for duration, bucket in list(self._by_duration.items()):
            while bucket:
                deadline = next(iter(bucket))
                if deadline.due > now:
                    break
                del bucket[deadline]
                deadline.due = None
                try:
                    deadline.callback()
                except Exception:
                    logger.exception("Error in a timeout handler")
            if not bucket and self._by_duration.get(duration) is bucket:
                # Empty buckets go, so that a server with no deadlines armed stops sweeping.
                del self._by_duration[duration]
