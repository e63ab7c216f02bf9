"""Ordered, non-blocking sends from one connection to the channel layer.

Each socket's messages must reach the layer in the order they happened (``websocket.connect``
before its first ``websocket.receive``, the last frame before ``websocket.disconnect``). With a
pooled async Redis client, firing one task per message could let a later send overtake an
earlier one on another connection, so each socket gets one queue drained by one task.
The queue is bounded in two steps. Past ``pause_at`` waiting messages the socket is told to stop
reading (``on_backlog(True)``: TCP back-pressure then slows the client down, nothing is refused)
and told to resume once the queue has drained to half of that. Frames already read from the
socket when it paused are still queued; only past ``max_pending`` — a client that packed that
many frames into data already read — is a message refused.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("channels.server")

#: What an error handler answers: True = wait and try the same message again, False = give up
#: on that message (the handler has already done whatever the failure means for the socket).
ErrorHandler = Callable[[Exception], bool]

RETRY_FIRST_DELAY = 0.05
# Capped low: most failures retried here are a full channel that workers drain within
# milliseconds; a long sleep would leave a held handshake or a paused socket idle for nothing.
RETRY_MAX_DELAY = 0.5


class OrderedSender:
    """Sends a connection's messages one after another from a single asyncio task."""

    def __init__(self, channel_layer: Any, max_pending: int, pause_at: int | None = None,
                 on_backlog: Callable[[bool], None] | None = None,
                 shared: dict[str, Any] | None = None) -> None:
        self.channel_layer = channel_layer
        #: Per channel, a sender shared by every connection (``CoalescingSender``): it has the
        #: same ``send`` outcome as the layer's ``send_async``, and batches with other sockets.
        self.shared = shared or {}
        self.max_pending = max_pending
        self.pause_at = pause_at if pause_at is not None else max_pending
        self.resume_at = self.pause_at // 2
        self.on_backlog = on_backlog
        self.paused = False
        self.pending: deque[tuple[str, dict, ErrorHandler | None]] = deque()
        self._task: asyncio.Task | None = None
        self._closed = False

    def send(self, channel: str, message: dict, on_error: ErrorHandler | None = None,
             force: bool = False) -> bool:
        """Queue a send; False (nothing queued) when ``max_pending`` messages are waiting.

        ``force`` skips the bound, for the one final message (a disconnect) a socket sends.
        """
        if self._closed:
            return False
        if len(self.pending) >= self.max_pending and not force:
            return False
        self.pending.append((channel, message, on_error))
        if not self.paused and self.on_backlog is not None and len(self.pending) >= self.pause_at:
            self.paused = True
            self.on_backlog(True)
        if self._task is None:
            self._task = asyncio.get_event_loop().create_task(self._drain())
        return True

    def hold(self) -> None:
        """Pause the socket's reads now (the layer refused a message and it will be retried);
        reads resume through the usual drain rule once the queue has gone down."""
        if not self.paused and self.on_backlog is not None and not self._closed:
            self.paused = True
            self.on_backlog(True)

    def close(self) -> None:
        """Drop what is still queued (the socket's fate has been decided)."""
        self._closed = True
        self.pending.clear()
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _send(self, channel: str, message: dict) -> None:
        shared = self.shared.get(channel)
        try:
            if shared is not None:
                await shared.send(message)
            else:
                await self.channel_layer.send_async(channel, message)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is None or task.cancelling():
                raise
            # The shared batch carrying it was cancelled, not this socket: a failure like any
            # other, answered by the socket's policy.
            raise RuntimeError(f"the send to {channel} was cancelled") from None

    async def _drain(self) -> None:
        delay = RETRY_FIRST_DELAY
        try:
            while self.pending:
                channel, message, on_error = self.pending[0]
                try:
                    await self._send(channel, message)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - every failure has a defined answer
                    retry = on_error(exc) if on_error is not None else False
                    if on_error is None:
                        logger.warning("Dropped a message to %s: %r", channel, exc)
                    if retry and not self._closed:
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, RETRY_MAX_DELAY)
                        continue
                    if self.pending and self.pending[0][1] is message:
                        self.pending.popleft()
                    continue
                delay = RETRY_FIRST_DELAY
                if self.pending and self.pending[0][1] is message:
                    self.pending.popleft()
                if self.paused and len(self.pending) <= self.resume_at and not self._closed:
                    self.paused = False
                    if self.on_backlog is not None:
                        self.on_backlog(False)
        finally:
            if self._task is asyncio.current_task():
                self._task = None
