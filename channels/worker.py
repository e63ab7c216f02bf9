"""The worker: receive on every routed channel, run the matching consumer, send what it queued.

A blocking ``receive`` (never a polling sleep) that takes several queued messages at once when
they are quick to handle: a batch is bounded by ``batch_size`` and, by default, by about
``batch_budget`` seconds of recent consumer time, so a slow consumer makes the worker take one
message at a time again and never leaves others waiting behind it. Within a batch the
consumers' replies go out together with the next receive, and Django's request lifecycle
(database connection checks) brackets the batch rather than each message. A SIGTERM finishes
the message in hand and hands the rest of its batch back. Several workers in one process share
nothing but the layer (``WorkerGroup``). Only a layer that ignores ``block`` (allowed by
ASGI 1, common in third-party layers) gets short pauses between its empty answers, as
Channels 1.1 did.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.core.signals import request_finished, request_started

from channels.exceptions import ChannelSocketException, ConsumeLater, DenyConnection
from channels.layers.base import LayerUnavailable, MessageTooLarge
from channels.message import Message, pending_message_store
from channels.shutdown import GracefulShutdown
from channels.signals import consumer_finished, consumer_started, worker_ready
from channels.utils import name_that_thing

logger = logging.getLogger("channels.worker")


class Worker(GracefulShutdown):
    """Runs consumers for messages of one layer (a ``ChannelLayerWrapper``, which has the router).

    ``callback(channel, message)`` is called before each consumer (``runworker -v 2`` logs with
    it). ``message_retries`` bounds how often one message may be put back by ``ConsumeLater``.
    ``batch_size`` is the most messages taken per receive; None (the default) means up to
    ``max_batch_size``, fewer when consumers are slow (``batch_budget``). A number fixes it.
    """

    shutdown_logger = logger
    # A stop finishes the message in hand, or the whole batch when its size is automatic.
    unit_of_work = "message"

    #: Largest batch taken when ``batch_size`` is left to the worker.
    max_batch_size = 16
    #: Consumer time (seconds, by recent average) a batch chosen by the worker may hold: a
    #: message waits behind the others of its batch, so slow consumers get batches of one.
    batch_budget = 0.002

    # How often a ConsumeLater re-queue is retried when the channel is full, and the pause.
    requeue_attempts = 10
    requeue_interval = 0.05
    # Back-off after a failed receive (layer down): doubles up to the maximum. The maximum is
    # how late the worker may notice the layer is back; meanwhile servers queue frames, so a
    # late worker lets websocket.receive fill and sockets be closed with 1013.
    receive_error_backoff = (0.1, 0.5)
    # Pause after an empty receive that came back sooner than this pause: the layer ignores
    # ``block=True`` (ASGI 1 allows it), and asking again at once would spin a core on nothing.
    # Doubles up to the maximum while it stays empty; a message resets it. Layers that block
    # (every built-in one) return no sooner than their own timeout, so they never pause here.
    empty_receive_backoff = (0.005, 0.05)
    #: Whether ``run()`` logs the channels it listens on (a WorkerGroup's threads leave it to
    #: the group, so a process says it once).
    announce = True
    announce_suffix = ""

    def __init__(
        self,
        channel_layer: Any,
        callback: Callable[[str, Message], Any] | None = None,
        message_retries: int = 10,
        signal_handlers: bool = True,
        only_channels: Iterable[str] | None = None,
        exclude_channels: Iterable[str] | None = None,
        batch_size: int | None = None,
    ) -> None:
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.channel_layer = channel_layer
        self.batch_size = batch_size
        # Average seconds per consumer (moving), for the batch limit when it is the worker's.
        self._consumer_seconds = self.batch_budget
        self._batch_limit = 1 if batch_size is None else batch_size
        self.callback = callback
        self.message_retries = message_retries
        self.signal_handlers = signal_handlers
        self.only_channels = list(only_channels or [])
        self.exclude_channels = list(exclude_channels or [])
        self.termed = False
        self.in_job = False
        self.messages_handled = 0
        # Set to interrupt back-off pauses at once when asked to stop.
        self._stop_event = threading.Event()
        # Replies of the batch handled so far, to go out with the next receive (run()), or
        # before any send that does not wait (order per channel is kept).
        self._deferred: list[tuple[Any, dict[str, Any], float | None]] = []
        self._can_defer = hasattr(channel_layer, "send_then_receive_batch")
        # Whether request_started was sent and request_finished is still owed (a batch shares
        # one request lifecycle).
        self._in_request = False
        # Whether _handle_batch is running: handle() called by anyone else sends its own replies.
        self._batch_running = False

    # -- lifecycle ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to end after the message in hand (thread-safe)."""
        self.termed = True
        self._stop_event.set()

    def ready(self) -> None:
        """Tell receivers this worker is about to start (``worker_ready``)."""
        worker_ready.send(sender=self)

    def apply_channel_filters(self, channels: Iterable[str]) -> list[str]:
        """Keep channels matching an ``only_channels`` glob, minus ``exclude_channels`` ones."""
        channels = list(channels)
        if self.only_channels:
            channels = [
                channel for channel in channels
                if any(fnmatch.fnmatchcase(channel, pattern) for pattern in self.only_channels)
            ]
        if self.exclude_channels:
            channels = [
                channel for channel in channels
                if not any(fnmatch.fnmatchcase(channel, pattern)
                           for pattern in self.exclude_channels)
            ]
        return sorted(channels)

    def run(self) -> None:
        """Handle messages until ``stop()`` or a signal."""
        if self.signal_handlers:
            self.install_signal_handler()
        channels = self.apply_channel_filters(self.channel_layer.router.channels)
        if not channels:
            logger.error("No channels to listen on (check the routing and --only/--exclude)")
            return
        if self.announce:
            logger.info("Listening on channels %s%s", ", ".join(channels), self.announce_suffix)
        error_pause = self.receive_error_backoff[0]
        unreachable_since: float | None = None
        empty_pause = self.empty_receive_backoff[0]
        while not self.termed:
            self.in_job = False
            started = time.monotonic()
            try:
                if self._deferred:
                    batch = self._send_deferred_and_receive(channels)
                else:
                    batch = self._receive(channels)
            except LayerUnavailable as exc:
                # An outage is one line when it starts and one when it ends, not a traceback
                # per retry: the error names the layer's server and says what failed.
                if unreachable_since is None:
                    unreachable_since = time.monotonic()
                    logger.error("Channel layer unreachable, retrying: %s", exc)
                self._stop_event.wait(error_pause)
                error_pause = min(error_pause * 2, self.receive_error_backoff[1])
                continue
            except Exception:
                logger.exception("Receiving from the channel layer failed; retrying in %.1fs",
                                 error_pause)
                self._stop_event.wait(error_pause)
                error_pause = min(error_pause * 2, self.receive_error_backoff[1])
                continue
            if unreachable_since is not None:
                logger.warning("Channel layer reachable again after %.1f s",
                               time.monotonic() - unreachable_since)
                unreachable_since = None
            error_pause = self.receive_error_backoff[0]
            if not batch:
                if time.monotonic() - started < empty_pause:
                    self._stop_event.wait(empty_pause)
                    empty_pause = min(empty_pause * 2, self.empty_receive_backoff[1])
                continue
            empty_pause = self.empty_receive_backoff[0]
            self._handle_batch(batch)
        self._send_deferred()
        self.in_job = False
        logger.info("Worker stopped after %d messages", self.messages_handled)

    def _handle_batch(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        """Run the batch's consumers in order; their replies wait for the next receive."""
        started = time.perf_counter()
        handled = 0
        # A send that does not wait (``immediately=True``, a streamed HTTP response, a
        # rejection) first releases the replies held so far, so none overtakes them.
        pending_message_store.set_release_hook(self._send_deferred if self._can_defer else None)
        self._batch_running = True
        try:
            for index, (channel, content) in enumerate(batch):
                # Stopping: an automatic batch is bounded by a few ms of consumer time, so it
                # is finished (giving messages back would put them behind later frames of the
                # same socket); a batch size the user fixed may be long, so the rest goes back.
                if self.termed and self.batch_size is not None:
                    self._give_back(batch[index:])
                    break
                self.in_job = True
                self._handle_one(channel, content)
                handled += 1
        finally:
            self._batch_running = False
            pending_message_store.set_release_hook(None)
            self._end_request()
        if self.batch_size is None and handled:
            self._adapt_batch_limit((time.perf_counter() - started) / handled)

    def _adapt_batch_limit(self, seconds_per_message: float) -> None:
        # A moving average, so one slow message does not shrink the batch for long, and a
        # slow consumer is noticed within a few batches.
        average = self._consumer_seconds = (self._consumer_seconds * 3 + seconds_per_message) / 4
        self._batch_limit = max(1, min(self.max_batch_size, int(self.batch_budget / average)))

    def _begin_request(self) -> None:
        if not self._in_request:
            self._in_request = True
            self._send_signal(request_started, environ={})

    def _end_request(self) -> None:
        if self._in_request:
            self._in_request = False
            self._send_signal(request_finished)

    def _send_deferred_and_receive(self, channels: list[str]) -> list[tuple[str, dict[str, Any]]]:
        """The last consumer's replies and the next receive, in one layer call."""
        deferred, self._deferred = self._deferred, []
        pairs = [(sender.name, message) for sender, message, _ in deferred]
        try:
            flags, batch = self.channel_layer.send_then_receive_batch(
                pairs, channels, self._batch_limit, block=True)
        except (TypeError, ValueError, MessageTooLarge):
            # A reply the layer refuses, found before anything was written: send them one by
            # one, so only that one is logged and dropped.
            pending_message_store.send_all(deferred)
            return self._receive(channels)
        except Exception:
            logger.error("Could not send %d buffered message(s) to %s (some may have gone out) "
                         "while receiving", len(pairs), ", ".join(sorted({c for c, _ in pairs})))
            raise
        for (sender, message, retry_time), queued in zip(deferred, flags, strict=True):
            if not queued:  # that channel was full: retry as the usual flush would
                pending_message_store.send_or_log(sender, message, retry_time)
        return batch

    def _send_deferred(self) -> None:
        """The held replies, now: in one layer call where the layer takes several at once."""
        deferred, self._deferred = self._deferred, []
        if len(deferred) < 2 or not hasattr(self.channel_layer, "send_many"):
            pending_message_store.send_all(deferred)
            return
        try:
            flags = self.channel_layer.send_many([(sender.name, message)
                                                  for sender, message, _ in deferred])
        except (TypeError, ValueError, MessageTooLarge):
            # Refused before anything was written: one by one, so only the culprit is dropped.
            pending_message_store.send_all(deferred)
            return
        except Exception:
            logger.exception("Could not send %d buffered message(s) to %s (some may have gone "
                             "out)", len(deferred),
                             ", ".join(sorted({sender.name for sender, _, _ in deferred})))
            return
        for (sender, message, retry_time), queued in zip(deferred, flags, strict=True):
            if not queued:  # that channel was full: retry as the usual flush would
                pending_message_store.send_or_log(sender, message, retry_time)

    def _receive(self, channels: list[str]) -> list[tuple[str, dict[str, Any]]]:
        """One blocking receive (bounded by the layer): a batch when ``batch_size`` > 1.

        A batch saves a layer round trip per message when messages queue up; it is handled
        by this worker alone, hence its bound by consumer time.
        """
        if self._batch_limit > 1 and hasattr(self.channel_layer, "receive_batch"):
            return self.channel_layer.receive_batch(channels, self._batch_limit, block=True)
        channel, content = self.channel_layer.receive(channels, block=True)
        return [] if channel is None else [(channel, content)]

    def _give_back(self, unhandled: list[tuple[str, dict[str, Any]]]) -> None:
        """Stopping mid-batch: the messages not started go back to their channels for others."""
        for channel, content in unhandled:
            try:
                self.channel_layer.send(channel, content)
            except Exception:
                logger.exception("Could not give back an unhandled message on %s; dropped it",
                                 channel)

    # -- one message --------------------------------------------------------------------------

    def handle(self, channel: str, content: dict[str, Any]) -> None:
        """Route one message and run its consumer; never raises (the loop must survive).

        Called on its own rather than by the worker's loop, it also sends the consumer's replies
        and ends the request before returning: there is no next receive for them to ride with.
        """
        self._handle_one(channel, content)
        if not self._batch_running:
            self._send_deferred()
            self._end_request()

    def _handle_one(self, channel: str, content: dict[str, Any]) -> None:
        try:
            message = Message(content, channel, self.channel_layer)
            if content.get("__retries__", 0) >= self.message_retries:
                # Last chance: consumers may check this to give up cleanly.
                message.__doomed__ = True
            match = self.channel_layer.router.match(message)
        except Exception:
            logger.exception("Could not build or route a message on %s; dropped it", channel)
            return
        if match is None:
            logger.error("Could not find a consumer for a message on %s; check your routing",
                         channel)
            return
        consumer, kwargs = match
        self.messages_handled += 1
        if self.callback is not None:
            try:
                self.callback(channel, message)
            except Exception:
                logger.exception("Worker callback failed for a message on %s", channel)
        self._run_consumer(consumer, kwargs, message)

    def _run_consumer(self, consumer: Callable[..., Any], kwargs: dict[str, Any],
                      message: Message) -> None:
        # request_started/finished make Django manage DB connections as for a request, one
        # request per batch (a batch is a moment's work; the checks cost a third of a quick
        # consumer's time). Consumers that run Django's handler (ViewConsumer) send them
        # themselves, so the batch's request ends before them.
        if getattr(consumer, "sends_request_signals", False):
            self._end_request()
        else:
            self._begin_request()
        failed = False
        try:
            self._send_signal(consumer_started, environ={})
            consumer(message, **kwargs)
        except DenyConnection:
            pending_message_store.discard()
            self._deny(message)
        except ChannelSocketException as exc:
            pending_message_store.discard()
            try:
                exc.run(message)
            except Exception:
                logger.exception("%s raised by %s failed to run", type(exc).__name__,
                                 name_that_thing(consumer))
        except ConsumeLater:
            pending_message_store.discard()
            self.requeue(message)
        except Exception:
            failed = True
            dropped = pending_message_store.discard()
            logger.exception("Error processing a message on %s with consumer %s "
                             "(%d queued sends dropped)", message.channel.name,
                             name_that_thing(consumer), dropped)
        finally:
            if self._can_defer:
                # Sent with the next receive (run()); else consumer_finished flushes them, after
                # the replies held before them.
                taken = pending_message_store.take_channel_sends(self.channel_layer)
                if taken is not None:
                    self._deferred += taken
                elif self._deferred and pending_message_store.has_pending():
                    self._send_deferred()
            # Flushes the sends the consumer queued (unless discarded or taken); never raises.
            self._send_signal(consumer_finished)
            if failed:
                # What a failed consumer leaves (a broken connection, an aborted transaction)
                # is cleaned up before the next one runs, as after a failed request.
                self._end_request()

    def _send_signal(self, django_signal: Any, **kwargs: Any) -> None:
        """A failing receiver is logged; it must not take the worker loop down with it."""
        for receiver, result in django_signal.send_robust(sender=self.__class__, **kwargs):
            if isinstance(result, Exception):
                logger.error("Signal receiver %s failed", name_that_thing(receiver),
                             exc_info=(type(result), result, result.__traceback__))

    def _deny(self, message: Message) -> None:
        if message.channel.name != "websocket.connect" or message.reply_channel is None:
            # The original raised ValueError here and the loop died; a wrong raise is a bug in
            # the consumer, not a reason to stop serving everyone else.
            logger.error("DenyConnection raised for a message on %s; it only means something "
                         "on websocket.connect, ignored", message.channel.name)
            return
        try:
            message.reply_channel.send({"close": True}, immediately=True)
        except Exception:
            logger.exception("Could not send the rejection to %s", message.reply_channel)

    def requeue(self, message: Message) -> None:
        """Put a ``ConsumeLater`` message back at the end of its channel, a bounded number of times.

        The counter travels in the message (``__retries__``) so any worker can enforce it.
        """
        content = message.content
        retries = content.get("__retries__", 0) + 1
        if retries > self.message_retries:
            logger.warning("Message on %s was deferred more than %d times; dropped it",
                           message.channel.name, self.message_retries)
            return
        content["__retries__"] = retries
        full_error = self.channel_layer.ChannelFull
        for _ in range(self.requeue_attempts):
            try:
                self.channel_layer.send(message.channel.name, content)
                return
            except full_error:
                # Nothing signals "space freed"; a short pause before the next try.
                time.sleep(self.requeue_interval)
            except Exception:
                logger.exception("Could not re-queue a deferred message on %s; dropped it",
                                 message.channel.name)
                return
        logger.error("Channel %s stayed full; dropped a deferred message", message.channel.name)


class WorkerGroup(Worker):
    """Several workers in one process: this one in the calling thread, the rest in threads.

    A signal stops all of them the same graceful way (each finishes the message in hand).
    """

    join_timeout = 30.0

    def __init__(self, *args: Any, n_threads: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        n_threads = n_threads or os.cpu_count() or 1
        sub_kwargs = dict(kwargs, signal_handlers=False)
        self.workers = [Worker(*args, **sub_kwargs) for _ in range(n_threads - 1)]
        # One "Listening on" line for the process, not one per thread.
        self.announce_suffix = f" ({n_threads} threads)" if n_threads > 1 else ""
        for worker in self.workers:
            worker.announce = False
        self.threads: list[threading.Thread] = []

    def stop(self) -> None:
        super().stop()
        for worker in self.workers:
            worker.stop()

    def ready(self) -> None:
        super().ready()
        for worker in self.workers:
            worker.ready()

    def run(self) -> None:
        if self.signal_handlers:
            self.install_signal_handler()
        for number, worker in enumerate(self.workers, start=1):
            thread = threading.Thread(target=worker.run, name=f"channels-worker-{number}",
                                      daemon=True)
            thread.start()
            self.threads.append(thread)
        self.signal_handlers = False  # already installed; Worker.run must not do it again
        try:
            super().run()
        finally:
            self.stop()
            deadline = time.monotonic() + self.join_timeout
            for thread in self.threads:
                thread.join(max(0.0, deadline - time.monotonic()))
                if thread.is_alive():
                    logger.warning("Worker thread %s did not finish in time", thread.name)
