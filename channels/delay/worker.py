"""The delay server's loop: store ``asgi.delay`` messages as rows, send each row when it is due.

Two threads, one job each. A receiving thread waits on ``asgi.delay`` (the layer's blocking
receive) and turns each message into a row due ``delay`` ms after the moment it arrived. The
main thread does all database work: it stores those rows, sends the rows that are due, then
waits for exactly as long as the next row has to wait, unless the receiving thread hands it new
rows sooner. So nothing is polled, a row goes out at its due time, and the time spent on the
database never delays taking messages in (nor shifts their due times).

Every wait is also bounded by ``database_sleep_duration``: another delay server may have stored
an earlier row that this one cannot know about, and only a fresh look at the table finds it.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, connections, router, transaction
from django.utils import timezone

from channels.delay.models import DelayedMessage
from channels.layers.base import LayerUnavailable, MessageTooLarge, validate_channel_name
from channels.shutdown import GracefulShutdown

logger = logging.getLogger("channels.delay")

#: The channel delayed messages are sent to (the ASGI delay extension's name).
DELAY_CHANNEL = "asgi.delay"

#: Shortest wait after a step that found nothing due (seconds).
NOTHING_DUE_PAUSE = 0.005

#: Put on the main thread's queue by ``stop()`` to end its wait at once.
_WAKE = object()


class InvalidDelayMessage(ValueError):
    """An ``asgi.delay`` message that cannot become a row; the text says why."""


def parse_delay_message(message: dict[str, Any],
                        received_at: datetime | None = None) -> DelayedMessage:
    """The row (not yet saved) for one ``asgi.delay`` message, due ``delay`` ms after
    ``received_at`` (default: now).

    Raises ``InvalidDelayMessage`` for a message the delay server must skip: a missing key, a
    channel name the layer would refuse, a delay that is not a non-negative int, or content
    that is not a dict or cannot be stored as JSON (bytes values).
    """
    missing = [key for key in ("channel", "content", "delay") if key not in message]
    if missing:
        raise InvalidDelayMessage(f"missing key(s) {', '.join(map(repr, missing))}")
    channel = message["channel"]
    try:
        validate_channel_name(channel)
    except (TypeError, ValueError) as exc:
        raise InvalidDelayMessage(f"bad 'channel': {exc}") from None
    delay = message["delay"]
    if type(delay) is not int or delay < 0:
        raise InvalidDelayMessage(
            f"'delay' must be a non-negative int of milliseconds, not {delay!r:.50}")
    content = message["content"]
    if not isinstance(content, dict):
        raise InvalidDelayMessage(f"'content' must be a dict, not {type(content).__name__}")
    try:
        text = json.dumps(content)
    except (TypeError, ValueError) as exc:
        raise InvalidDelayMessage(f"'content' cannot be stored as JSON ({exc})") from None
    try:
        due_date = (received_at or timezone.now()) + timedelta(milliseconds=delay)
    except OverflowError:
        raise InvalidDelayMessage(f"'delay' is too far in the future: {delay}") from None
    return DelayedMessage(channel_name=channel, content=text, due_date=due_date)


class Worker(GracefulShutdown):
    """Runs the delay server for one layer until ``stop()`` or SIGTERM/SIGINT.

    ``database_sleep_duration`` (seconds) bounds every wait, so rows stored by another delay
    server are found at most that late even when this one has nothing due sooner.
    """

    shutdown_logger = logger
    unit_of_work = "step"

    #: Messages taken from ``asgi.delay`` per receive, and due rows sent per transaction.
    receive_limit = 100
    send_batch = 100
    #: How long a row waits after finding its channel full (ms).
    requeue_delay = 1000
    #: Back-off after a failed step (database or layer down): doubles up to the maximum.
    error_backoff = (0.1, 5.0)
    #: Rows received but not stored (the database is slow or down) above which the receiving
    #: thread stops taking messages: the rest wait in the layer.
    max_unsaved = 1000
    #: How long stopping waits for the receiving thread's blocking receive to end.
    receiver_join_timeout = 30.0

    def __init__(self, channel_layer: Any, signal_handlers: bool = True,
                 database_sleep_duration: float = 1) -> None:
        if (not isinstance(database_sleep_duration, (int, float))
                or isinstance(database_sleep_duration, bool)
                or not 0 < database_sleep_duration < math.inf):
            raise ValueError("database_sleep_duration must be a positive number of seconds, "
                             f"got {database_sleep_duration!r}")
        self.channel_layer = channel_layer
        self.signal_handlers = signal_handlers
        self.database_sleep_duration = database_sleep_duration
        self.termed = False
        self.in_job = False
        # What happened so far (logged on exit; tests read them).
        self.stored = 0
        self.sent = 0
        self.taken_by_others = 0
        self.requeued = 0
        self.invalid = 0
        # Lists of received rows from the receiving thread, or _WAKE. A SimpleQueue because
        # stop() puts on it from a signal handler, which may interrupt this very queue.
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        # Received rows not stored yet (kept across a failed insert).
        self._unsaved: list[DelayedMessage] = []
        self._receiver: threading.Thread | None = None
        # Ends the receiving thread's pauses; set by the main thread (never by a signal).
        self._receiver_done = threading.Event()

    # -- lifecycle ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to end after the current step (thread-safe, signal-safe)."""
        self.termed = True
        self._inbox.put(_WAKE)

    def run(self) -> None:
        """Run until stopped; every message taken in is stored (or given back) on return."""
        if self.signal_handlers:
            self.install_signal_handler()
        logger.info("Listening on %s", DELAY_CHANNEL)
        self._receiver = threading.Thread(target=self._receive_forever, daemon=True,
                                          name="channels-delay-receiver")
        self._receiver.start()
        error_pause = self.error_backoff[0]
        try:
            while not self.termed:
                try:
                    wait = self.step()
                except Exception:
                    logger.exception("Delay server step failed; retrying in %.1fs", error_pause)
                    # A broken connection is reopened on the next query rather than reused.
                    connections.close_all()
                    wait = error_pause
                    error_pause = min(error_pause * 2, self.error_backoff[1])
                else:
                    error_pause = self.error_backoff[0]
                if not self.termed:
                    self._wait(wait)
        finally:
            self._shutdown()
        logger.info("Delay server stopped: %d messages stored, %d sent, %d left to another "
                    "process, %d requeued (channel full), %d invalid skipped", self.stored,
                    self.sent, self.taken_by_others, self.requeued, self.invalid)

    def _shutdown(self) -> None:
        self.in_job = True
        self.termed = True
        self._receiver_done.set()
        if self._receiver is not None:
            # Its blocking receive ends within the layer's blocking timeout.
            self._receiver.join(self.receiver_join_timeout)
            if self._receiver.is_alive():
                logger.warning("The receiving thread did not stop within %.0fs; a message it "
                               "takes from now on is lost", self.receiver_join_timeout)
        self._take_inbox()
        if self._unsaved:
            try:
                self._store_unsaved()
            except Exception:
                logger.exception("Could not store %d received message(s)", len(self._unsaved))
                self._hand_back_unsaved()
        self.in_job = False

    # -- main thread: the database ------------------------------------------------------------

    def step(self) -> float:
        """Store what was received and send the due rows; seconds until the next is due."""
        self.in_job = True
        try:
            self._store_unsaved()
            return self._send_due_rows()
        finally:
            self.in_job = False

    def _wait(self, seconds: float) -> None:
        """Until new rows arrive, ``stop()``, or ``seconds`` have passed."""
        logger.debug("Waiting up to %.3fs", seconds)
        if seconds > 0:
            try:
                item = self._inbox.get(timeout=seconds)
            except queue.Empty:
                return
            if item is not _WAKE:
                self._unsaved.extend(item)
        self._take_inbox()

    def _take_inbox(self) -> None:
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if item is not _WAKE:
                self._unsaved.extend(item)

    def _store_unsaved(self) -> None:
        if not self._unsaved:
            return
        rows = self._unsaved
        # One INSERT, all rows or none; on failure they stay here for the next step.
        DelayedMessage.objects.bulk_create(rows)
        self._unsaved = []
        self.stored += len(rows)
        for row in rows:
            logger.debug("Stored a message for %s due at %s", row.channel_name,
                         row.due_date.isoformat())

    def _send_due_rows(self) -> float:
        """Send up to ``send_batch`` due rows; seconds until the next row is due (bounded by
        ``database_sleep_duration``; 0 when more rows are due already)."""
        due = list(DelayedMessage.objects.is_due().order_by("due_date", "pk")[:self.send_batch])
        if due:
            self._send_rows(due)
        if len(due) == self.send_batch:
            return 0.0
        next_due = DelayedMessage.objects.order_by("due_date").values_list(
            "due_date", flat=True).first()
        if next_due is None:
            return self.database_sleep_duration
        wait = min((next_due - timezone.now()).total_seconds(), self.database_sleep_duration)
        if not due:
            # A row that became due between the two queries is sent after this short pause;
            # without it, a row the database does not see as due (a date another program
            # wrote in another format) would have this loop query without pause.
            wait = max(wait, NOTHING_DUE_PAUSE)
        return wait

    def _send_rows(self, rows: list[DelayedMessage]) -> None:
        """Claim and send rows in ONE transaction: one commit for all of them, and a row
        whose DELETE another process won is skipped (see ``DelayedMessage.claim``)."""
        now = timezone.now()
        database = router.db_for_write(DelayedMessage)
        undeliverable = (ValueError, TypeError,
                         getattr(self.channel_layer, "MessageTooLarge", MessageTooLarge))
        failure: Exception | None = None
        with transaction.atomic(using=database):
            claimed = [row for row in rows if row.claim(using=database, due_by=now)]
            self.taken_by_others += len(rows) - len(claimed)
            for index, row in enumerate(claimed):
                try:
                    if row.send_claimed(self.channel_layer, self.requeue_delay, using=database):
                        self._sent(row)
                    else:
                        self.requeued += 1
                except LayerUnavailable as exc:
                    failure = exc
                    unsent = claimed[index:]
                    if exc.maybe_written:
                        # It may have gone out: sent at most once, so it is not sent again.
                        self.sent += 1
                        logger.warning("The layer failed while sending a delayed message to %s; "
                                       "it may not have arrived and is not sent again (%s)",
                                       row.channel_name, exc)
                        unsent = claimed[index + 1:]
                    for rest in unsent:  # back as they were, for a retry after the pause
                        rest.save(force_insert=True, using=database)
                    break
                except undeliverable as exc:
                    # Bad JSON, not a dict, a name or size the layer refuses: no retry can fix
                    # it, so its deletion stands.
                    logger.error("Dropped a delayed message for %r that cannot be sent: %s",
                                 row.channel_name, exc)
                except DatabaseError:
                    raise  # the transaction is broken: nothing more can be saved in it
                except Exception as exc:
                    # An error the layer does not classify (a Redis error reply such as OOM or
                    # READONLY, a third-party layer's own): taken as not written, so this row
                    # and the rest go back for a retry. The rows sent before it stay deleted;
                    # rolling the whole batch back would send them again on every retry.
                    failure = exc
                    for rest in claimed[index:]:
                        rest.save(force_insert=True, using=database)
                    break
        if failure is not None:
            raise failure

    def _sent(self, row: DelayedMessage) -> None:
        self.sent += 1
        if logger.isEnabledFor(logging.DEBUG):
            lateness = (timezone.now() - row.due_date).total_seconds() * 1000
            logger.debug("Sent a delayed message to %s (%.1f ms after its due time)",
                         row.channel_name, lateness)

    def _hand_back_unsaved(self) -> None:
        """Exiting with rows the database refused: back onto asgi.delay with what is left of
        their delay, for the next delay server to take."""
        for row in self._unsaved:
            message = {"channel": row.channel_name, "content": json.loads(row.content),
                       "delay": max(0, row.delay or 0)}
            try:
                self.channel_layer.send(DELAY_CHANNEL, message)
            except Exception as exc:
                logger.error("Lost a delayed message for %s: neither the database nor the "
                             "layer took it (%s)", row.channel_name, exc)
        self._unsaved = []

    # -- receiving thread: the layer ----------------------------------------------------------

    def _receive_forever(self) -> None:
        error_pause = self.error_backoff[0]
        while not self.termed:
            # At most receive_limit rows per batch still in the inbox.
            backlog = len(self._unsaved) + self._inbox.qsize() * self.receive_limit
            if backlog >= self.max_unsaved:
                # The main thread is behind (database slow or down): leave messages in the
                # layer rather than pile them up here.
                self._receiver_done.wait(0.05)
                continue
            try:
                received = self._receive_batch()
            except Exception:
                logger.exception("Receiving on %s failed; retrying in %.1fs", DELAY_CHANNEL,
                                 error_pause)
                self._receiver_done.wait(error_pause)
                error_pause = min(error_pause * 2, self.error_backoff[1])
                continue
            error_pause = self.error_backoff[0]
            if received:
                received_at = timezone.now()
                rows = [row for row in (self._parse(message, received_at)
                                        for _, message in received) if row is not None]
                if rows:
                    self._inbox.put(rows)

    def _receive_batch(self) -> list[tuple[str, dict[str, Any]]]:
        """One blocking receive (the layer bounds how long it waits)."""
        receive_batch = getattr(self.channel_layer, "receive_batch", None)
        if receive_batch is not None:
            return receive_batch([DELAY_CHANNEL], self.receive_limit, block=True)
        channel, message = self.channel_layer.receive([DELAY_CHANNEL], block=True)
        return [] if channel is None else [(channel, message)]

    def _parse(self, message: dict[str, Any], received_at: datetime) -> DelayedMessage | None:
        try:
            return parse_delay_message(message, received_at)
        except InvalidDelayMessage as exc:
            # One line, and on to the next message: a sender's mistake must not stop the
            # server for everyone (Channels 1.1 left its loop here).
            self.invalid += 1
            logger.error("Skipped an invalid %s message: %s; message: %s", DELAY_CHANNEL, exc,
                         _shortened(message))
            return None


def _shortened(message: Any, limit: int = 200) -> str:
    text = repr(message)
    return text if len(text) <= limit else text[:limit] + "..."
