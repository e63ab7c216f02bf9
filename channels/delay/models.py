"""``DelayedMessage``: one message waiting in the database for its due date.

A row is sent by deleting it and sending its content in ONE database transaction, and only the
caller whose conditional DELETE removed the row sends it. So two delay servers (or a restarted
one) can never both send a row: the loser's DELETE matches nothing. The commit comes after the
send, so a crash between the two leaves the row in place and it is sent again: the one window
where a message can go out twice (``docs/delay.md``).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import connections, models, router, transaction
from django.utils import timezone

from channels import DEFAULT_CHANNEL_LAYER
from channels.channel import Channel
from channels.layers.base import ChannelFull, LayerUnavailable

logger = logging.getLogger("channels.delay")


class DelayedMessageQuerySet(models.QuerySet):
    def is_due(self) -> DelayedMessageQuerySet:
        """Rows whose due date has passed."""
        return self.filter(due_date__lte=timezone.now())


class DelayedMessage(models.Model):
    due_date = models.DateTimeField(db_index=True)
    channel_name = models.CharField(max_length=512)
    #: The message to send, as JSON text (what Channels 1.1 stored, so its rows stay readable).
    content = models.TextField()

    objects = DelayedMessageQuerySet.as_manager()

    class Meta:
        # The table Channels 1.1 created under its app label "channels.delay".
        db_table = "channels.delay_delayedmessage"

    def __str__(self) -> str:
        return f"message for {self.channel_name} due {self.due_date}"

    @property
    def delay(self) -> int | None:
        """Milliseconds until the due date (negative once due); None before one is set.

        Setting it (``DelayedMessage(delay=500, ...)``) sets ``due_date`` to now plus that many
        milliseconds.
        """
        if self.due_date is None:
            return None
        return round((self.due_date - timezone.now()) / timedelta(milliseconds=1))

    @delay.setter
    def delay(self, milliseconds: int) -> None:
        self.due_date = timezone.now() + timedelta(milliseconds=milliseconds)

    def send(self, channel_layer: Any = None, requeue_delay: int = 1000) -> bool:
        """Send the content to ``channel_name`` now, due or not, and delete the row.

        True if this call sent it. False if the row was gone already (another process sent
        it), or if the channel was full: then the row stays, due ``requeue_delay`` ms from now
        (``ChannelFull`` is not raised). Any other error leaves the row as it was and is
        raised, except a layer error that says the message may have been written
        (``LayerUnavailable.maybe_written``): that one is raised with the row deleted, so the
        message is never sent twice.
        """
        channel_layer = _layer_or_default(channel_layer)
        if self.pk is None:  # never saved: nothing to claim or delete
            Channel(self.channel_name, channel_layer=channel_layer).send(
                json.loads(self.content), immediately=True)
            return True
        json.loads(self.content)  # unreadable content raises before the row is touched
        database = self._state.db or router.db_for_write(type(self), instance=self)
        maybe_sent: LayerUnavailable | None = None
        with transaction.atomic(using=database):
            if not self.claim(using=database):
                return False
            try:
                sent = self.send_claimed(channel_layer, requeue_delay, using=database)
            except LayerUnavailable as exc:
                if not exc.maybe_written:
                    raise  # nothing was written: the rollback keeps the row for a retry
                maybe_sent = exc
        if maybe_sent is not None:
            raise maybe_sent
        return sent

    def claim(self, using: str | None = None, due_by: datetime | None = None) -> bool:
        """Delete this row if it is still there (and due by ``due_by``); True if it was.

        Call it in the transaction that then sends the message (``send_claimed``). The
        rowcount of the DELETE decides between concurrent callers: the database lets only
        one of them remove the row, and the others' statements match nothing (a row another
        process pushed back is not due any more and is not matched either). One plain
        statement, without the ORM's delete collector: it runs once per row sent, and no
        delete signals are sent for it.
        """
        database = using or router.db_for_write(type(self), instance=self)
        connection = connections[database]
        quote = connection.ops.quote_name
        opts = self._meta
        sql = f"DELETE FROM {quote(opts.db_table)} WHERE {quote(opts.pk.column)} = %s"
        params = [opts.pk.get_db_prep_value(self.pk, connection)]
        if due_by is not None:
            due_field = opts.get_field("due_date")
            sql += f" AND {quote(due_field.column)} <= %s"
            params.append(due_field.get_db_prep_value(due_by, connection))
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount > 0

    def send_claimed(self, channel_layer: Any, requeue_delay: int = 1000,
                     using: str | None = None) -> bool:
        """Send a row this transaction claimed; True if sent.

        A full channel puts the row back with the same id, due ``requeue_delay`` ms from now,
        and returns False: the DELETE and this INSERT commit together, so other processes
        never see it missing. Other errors are raised (the caller decides whether to roll
        back).
        """
        content = json.loads(self.content)
        try:
            Channel(self.channel_name, channel_layer=channel_layer).send(content,
                                                                          immediately=True)
        except getattr(channel_layer, "ChannelFull", ChannelFull):
            self.delay = requeue_delay
            self.save(force_insert=True, using=using)
            logger.warning("Channel %s is full; message due again in %d ms",
                           self.channel_name, requeue_delay)
            return False
        return True


def _layer_or_default(channel_layer: Any) -> Any:
    if channel_layer is not None:
        return channel_layer
    from channels.asgi import channel_layers

    return channel_layers[DEFAULT_CHANNEL_LAYER]
