"""Coalescing for the server's busiest channel: requests read together, sent together.

Every HTTP request is one ``http.request`` send, and a layer round trip costs the interface
server more CPU than the rest of the request (command packing, socket writes and reads). Under
load the reactor reads several requests in one pass over the ready sockets; their sends are
collected until that pass ends (a task started by the first of them runs on the next pass) and
go as one ``send_many_async``. Nothing
waits for an earlier send to finish, so coalescing adds no round trip of latency: a lone request
is sent at the end of the pass that read it, as before, and the batches grow with the load.

Only messages to one channel are batched together, and only on a layer whose ``send_many`` to
one channel is all-or-nothing (``atomic_send_many``: on Redis one channel lives on one shard, and
a batch is one script call there), so a failed batch can be retried message by message without
duplicating anything. Any other layer gets plain, concurrent ``send_async`` calls as before.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

from channels.layers.base import ChannelFull, LayerUnavailable

logger = logging.getLogger("channels.server")

#: Messages per ``send_many_async`` call: bounds the size of one Redis script call.
MAX_BATCH = 64
#: Payload bytes per call, roughly (a message's top-level bytes and str values: bodies, frame
#: contents, paths): 64 one-megabyte frames read in one pass go as several calls, not one
#: 64 MB script call that Redis would run, and the server pack, in one piece.
MAX_BATCH_BYTES = 1024 * 1024

_Entry = tuple[dict, asyncio.Future]


class CoalescingSender:
    """Sends to one channel, coalescing the sends made during one pass of the event loop."""

    def __init__(self, channel_layer: Any, channel: str, max_batch: int = MAX_BATCH,
                 max_batch_bytes: int = MAX_BATCH_BYTES) -> None:
        self.channel_layer = channel_layer
        self.channel = channel
        self.max_batch = max_batch
        self.max_batch_bytes = max_batch_bytes
        self.batching = bool(getattr(channel_layer, "atomic_send_many", False)) and hasattr(
            channel_layer, "send_many_async")
        self.full_error = getattr(channel_layer, "ChannelFull", ChannelFull)
        self.waiting: list[_Entry] = []
        self._flusher: asyncio.Task | None = None  # created, its first step not run yet
        self._in_flight: set[asyncio.Task] = set()
        #: Messages that went out in a batch of more than one (for tests and statistics).
        self.coalesced = 0

    async def send(self, message: dict) -> None:
        """Send ``message``; raises exactly what ``send_async`` would have for it alone."""
        if not self.batching:
            await self.channel_layer.send_async(self.channel, message)
            return
        future = self.submit(message)
        try:
            await future
        except asyncio.CancelledError:
            # Not taken into a batch yet, it is never sent (a batch skips cancelled entries);
            # already taken, it may still be written, as any send cancelled half-way.
            if not future.cancel() and not future.cancelled():
                future.exception()  # failed as this caller gave up: seen, not logged as lost
            raise

    def submit(self, message: dict) -> asyncio.Future:
        """Queue ``message`` for this pass's batch, without a coroutine: the future's outcome
        is what ``send`` would have returned or raised (cancel it to withdraw the message
        while it waits). Only for a ``batching`` sender.

        For the server's busiest path: a request without a body is handed over from the
        reactor's callback directly, with no task of its own to start on the next pass.
        """
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.waiting.append((message, future))
        if self._flusher is None:
            # The task's first step runs on the loop's next pass, after every callback of this
            # one: the batch it takes is what this pass queued.
            flusher = self._flusher = loop.create_task(self._flush())
            self._track(flusher)
            flusher.add_done_callback(self._flusher_done)
        return future

    @property
    def in_flight(self) -> bool:
        return bool(self._in_flight or self.waiting)

    def _track(self, task: asyncio.Task) -> None:
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    def _flusher_done(self, flusher: asyncio.Task) -> None:
        if self._flusher is flusher:
            # Cancelled before its first step (a loop shutting down cancels every task): the
            # waiting messages were never taken. Their senders hear so, and the next submit
            # starts a new flush instead of queueing behind one that will never run.
            self._flusher = None
            pending, self.waiting = self.waiting, []
            for _, future in pending:
                future.cancel()

    async def _flush(self) -> None:
        self._flusher = None
        pending, self.waiting = self.waiting, []
        batches = self._split(pending)
        loop = asyncio.get_running_loop()
        for batch in batches[1:]:
            self._track(loop.create_task(self._send_batch(batch)))
        if batches:
            await self._send_batch(batches[0])

    def _split(self, pending: list[_Entry]) -> list[list[_Entry]]:
        """Consecutive runs of at most ``max_batch`` messages and (but for a single message
        larger than that) ``max_batch_bytes`` payload bytes."""
        batches: list[list[_Entry]] = []
        batch: list[_Entry] = []
        size = 0
        for entry in pending:
            weight = _payload_bytes(entry[0])
            if batch and (len(batch) >= self.max_batch or size + weight > self.max_batch_bytes):
                batches.append(batch)
                batch, size = [], 0
            batch.append(entry)
            size += weight
        if batch:
            batches.append(batch)
        return batches

    async def _send_batch(self, batch: list[_Entry]) -> None:
        # A caller cancelled since it queued its message has given up on it: never send it.
        batch = [entry for entry in batch if not entry[1].done()]
        try:
            if len(batch) == 1:
                await self._send_one(*batch[0])
            elif batch:
                await self._send_many(batch)
        finally:
            for _, future in batch:
                if not future.done():
                    future.cancel()

    async def _send_many(self, batch: list[_Entry]) -> None:
        try:
            flags = await self.channel_layer.send_many_async(
                [(self.channel, message) for message, _ in batch])
        except asyncio.CancelledError:
            raise
        except LayerUnavailable as exc:
            # All or nothing (atomic_send_many): each caller gets the error, and retries unless
            # it says the batch may have been written (``maybe_written``).
            for _, future in batch:
                _fail(future, exc)
            return
        except Exception as exc:  # noqa: BLE001 - answered per message below
            # Nothing was queued, and one message may be to blame (too large for the layer):
            # each is sent on its own, together, so only the culprit fails.
            logger.debug("Batched send to %s failed (%r): sending one by one",
                         self.channel, exc)
            await asyncio.gather(*(self._send_one(message, future)
                                   for message, future in batch))
            return
        self.coalesced += len(batch)
        for (_, future), queued in zip(batch, flags, strict=True):
            if future.done():
                continue
            if queued:
                future.set_result(None)
            else:
                future.set_exception(self.full_error(self.channel))

    async def _send_one(self, message: dict, future: asyncio.Future) -> None:
        try:
            await self.channel_layer.send_async(self.channel, message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the waiter raises it
            _fail(future, exc)
            return
        if not future.done():
            future.set_result(None)


def _payload_bytes(message: dict) -> int:
    return sum(len(value) for value in message.values() if isinstance(value, (bytes, str)))


def _fail(future: asyncio.Future, exc: Exception) -> None:
    """Fail one waiter with its own copy of ``exc``: an exception object raised in several
    tasks would have its traceback rewritten by each of them."""
    if future.done():
        return
    try:
        own = copy.copy(exc)
        own.__cause__ = exc.__cause__
    except Exception:  # noqa: BLE001 - an exception that cannot be copied is shared
        own = exc
    future.set_exception(own)
