"""The per-thread buffer of sends a consumer makes while it runs, released when it returns.

``Channel.send`` and ``Group.send`` (and the HTTP view consumer's last reply) write into it; the
worker empties it. It knows senders only by their ``send()``, so it sits below every module that
sends, and any of them can use it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from channels.layers.base import ChannelFull
from channels.signals import consumer_finished, consumer_started

logger = logging.getLogger("channels.pending")


class _Sender(Protocol):
    def send(self, content: dict[str, Any], immediately: bool = False) -> None: ...


class PendingSendLimitExceeded(RuntimeError):
    """A consumer queued more sends than ``PendingMessageStore.max_pending`` in one run."""


class PendingMessageStore:
    """Holds the sends a consumer makes until it returns, one buffer per thread.

    Releasing them only after the consumer succeeded means a consumer that fails half-way sends
    nothing, and replies cannot overtake state the consumer saves at its end (sessions).
    """

    # Retrying ChannelFull on flush: the receiver is usually a socket that drains quickly.
    retry_time = 2.0
    retry_interval = 0.05
    # A consumer in a loop must not grow worker memory without bound; past this it fails.
    max_pending = 10_000

    def __init__(self) -> None:
        self.threadlocal = threading.local()

    def prepare(self, **kwargs: Any) -> None:
        self.threadlocal.messages = []

    @property
    def active(self) -> bool:
        return getattr(self.threadlocal, "messages", None) is not None

    def append(self, sender: _Sender, message: dict[str, Any],
               retry_time: float | None = None) -> None:
        """Buffer a send; ``retry_time`` overrides how long a full channel is retried."""
        messages = self.threadlocal.messages
        if len(messages) >= self.max_pending:
            raise PendingSendLimitExceeded(
                f"a consumer queued more than {self.max_pending} sends; send with "
                "immediately=True or raise PendingMessageStore.max_pending"
            )
        messages.append((sender, message, retry_time))

    def take_channel_sends(self, channel_layer: Any) -> list[tuple[Any, dict[str, Any],
                                                                   float | None]] | None:
        """Take this thread's buffered sends for the caller to send, and stop buffering, if
        every one is a plain channel send on ``channel_layer`` (its sender's ``send()`` is just
        ``channel_layer.send(name, message)``: ``Channel.direct_layer_send``); else None (left
        in place for the usual flush, which keeps their order among group and other sends).

        The worker uses it to send a consumer's replies in the same round trip as its next
        receive.
        """
        messages = getattr(self.threadlocal, "messages", None)
        if not messages:
            return None
        if not all(getattr(sender, "direct_layer_send", False)
                   and sender.channel_layer is channel_layer for sender, _, _ in messages):
            return None
        self.threadlocal.messages = None
        return messages

    def has_pending(self) -> bool:
        """Whether this thread holds buffered sends."""
        return bool(getattr(self.threadlocal, "messages", None))

    def set_release_hook(self, hook: Callable[[], None] | None) -> None:
        """Have ``release_held()`` call ``hook`` in this thread (None: nothing).

        A worker holds a batch's replies for its next receive; a send that does not wait must
        let them out first, or it would overtake them on their channel.
        """
        self.threadlocal.release_hook = hook

    def release_held(self) -> None:
        """Before a send that skips the buffer: send what this thread's worker still holds."""
        hook = getattr(self.threadlocal, "release_hook", None)
        if hook is not None:
            hook()

    def discard(self) -> int:
        """Drop this thread's buffered sends (the consumer failed); returns how many."""
        messages = getattr(self.threadlocal, "messages", None) or []
        self.threadlocal.messages = None
        return len(messages)

    def send_and_flush(self, **kwargs: Any) -> None:
        """Send everything buffered in this thread, then stop buffering.

        Never raises: a flush runs from a ``consumer_finished`` receiver inside the worker loop,
        and the original's RuntimeError here ended that loop. A send that still fails after the
        retry window is logged with its channel and dropped; the others still go out.
        """
        messages = getattr(self.threadlocal, "messages", None) or []
        self.threadlocal.messages = None
        self.send_all(messages)

    def send_all(self, messages: list[tuple[Any, dict[str, Any], float | None]]) -> None:
        """Send buffered entries (as ``take_channel_sends`` returns them) in order; never
        raises."""
        for sender, message, retry_time in messages:
            self.send_or_log(sender, message, retry_time)

    def send_or_log(self, sender: _Sender, message: dict[str, Any],
                    retry_time: float | None = None) -> None:
        """Send, retrying a full channel for a while; a send that still fails is logged with
        its channel and dropped (never raises)."""
        try:
            self._send_with_retry(sender, message, retry_time)
        except Exception:
            logger.exception("could not send a buffered message to %s; dropped it", sender)

    def _send_with_retry(self, sender: _Sender, message: dict[str, Any],
                         retry_time: float | None = None) -> None:
        deadline = time.monotonic() + (self.retry_time if retry_time is None else retry_time)
        # Any sender with a send() may queue here; the ones with a layer name its ChannelFull.
        full_error = getattr(getattr(sender, "channel_layer", None), "ChannelFull", ChannelFull)
        while True:
            try:
                sender.send(message, immediately=True)
                return
            except full_error:
                if time.monotonic() >= deadline:
                    raise
                # No event tells us the receiver drained; a short pause is the only option.
                time.sleep(self.retry_interval)


pending_message_store = PendingMessageStore()

consumer_started.connect(pending_message_store.prepare, dispatch_uid="channels.pending.prepare")
consumer_finished.connect(
    pending_message_store.send_and_flush, dispatch_uid="channels.pending.flush"
)
