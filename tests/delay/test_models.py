"""DelayedMessage: due dates, sending once, full channels, a layer that is down."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from channels.asgi import ChannelLayerWrapper
from channels.delay.models import DelayedMessage
from channels.layers.base import LayerUnavailable
from channels.layers.redis import RedisChannelLayer
from tests.core.processes import free_port
from tests.layers.fault_proxy import FaultProxy

pytestmark = pytest.mark.django_db


def stored(channel: str = "dest.a", content: dict | None = None, delay: int = 0):
    return DelayedMessage.objects.create(channel_name=channel, delay=delay,
                                         content=json.dumps(content or {"n": 1}))


def test_the_table_keeps_its_channels_1_name():
    assert DelayedMessage._meta.db_table == "channels.delay_delayedmessage"
    assert DelayedMessage._meta.get_field("due_date").db_index


def test_delay_sets_the_due_date_in_milliseconds_from_now():
    before = timezone.now()
    message = DelayedMessage(channel_name="dest.a", content="{}", delay=1500)
    after = timezone.now()
    assert before + timedelta(milliseconds=1500) <= message.due_date
    assert message.due_date <= after + timedelta(milliseconds=1500)
    assert 1400 <= message.delay <= 1500
    assert DelayedMessage(channel_name="dest.a", content="{}").delay is None


def test_is_due_returns_only_rows_whose_due_date_has_passed():
    due = stored(delay=-10)
    stored(delay=60_000)
    assert list(DelayedMessage.objects.is_due()) == [due]


def test_send_delivers_the_content_and_deletes_the_row(memory_layer):
    row = stored(content={"text": "hi", "n": [1, 2]}, delay=60_000)
    assert row.send(memory_layer) is True  # due or not: send() means now
    assert memory_layer.receive(["dest.a"]) == ("dest.a", {"text": "hi", "n": [1, 2]})
    assert not DelayedMessage.objects.exists()


def test_a_row_another_process_sent_already_is_not_sent_again(memory_layer):
    row = stored()
    DelayedMessage.objects.filter(pk=row.pk).delete()  # the other process won the row
    assert row.send(memory_layer) is False
    assert row.claim() is False
    assert memory_layer.receive(["dest.a"]) == (None, None)


def test_claim_takes_a_row_once_and_only_while_it_is_due():
    row = stored(delay=60_000)
    assert row.claim(due_by=timezone.now()) is False  # not due: left alone
    assert DelayedMessage.objects.filter(pk=row.pk).exists()
    assert row.claim() is True
    assert row.claim() is False
    assert not DelayedMessage.objects.exists()


def test_a_full_channel_pushes_the_row_back_by_the_requeue_delay(memory_layer):
    memory_layer.send("dest.a", {"filler": 1})
    memory_layer.send("dest.a", {"filler": 2})  # capacity 2: full
    row = stored(delay=-5000)
    assert row.send(memory_layer, requeue_delay=700) is False  # ChannelFull is not raised
    again = DelayedMessage.objects.get()
    assert again.pk == row.pk and again.content == row.content
    assert 600 <= again.delay <= 700
    # The channel still holds only the two fillers.
    assert [memory_layer.receive(["dest.a"])[1] for _ in range(3)] == [
        {"filler": 1}, {"filler": 2}, None]
    assert again.send(memory_layer) is True
    assert memory_layer.receive(["dest.a"]) == ("dest.a", {"n": 1})
    assert not DelayedMessage.objects.exists()


def test_a_layer_that_is_down_leaves_the_row_for_a_retry():
    down = RedisChannelLayer(hosts=[f"redis://127.0.0.1:{free_port()}/0"])
    try:
        row = stored()
        with pytest.raises(LayerUnavailable):
            row.send(ChannelLayerWrapper(down, "default", []))
        assert DelayedMessage.objects.get().pk == row.pk
    finally:
        down.close()


def test_an_unsaved_message_is_sent_without_touching_the_table(memory_layer):
    message = DelayedMessage(channel_name="dest.a", content='{"x": 1}', delay=0)
    assert message.send(memory_layer) is True
    assert memory_layer.receive(["dest.a"]) == ("dest.a", {"x": 1})
    assert not DelayedMessage.objects.exists()


def test_send_uses_the_default_layer_when_none_is_given(memory_layer):
    from channels.asgi import channel_layers

    old = channel_layers.set("default", memory_layer)
    try:
        assert stored().send() is True
    finally:
        channel_layers.set("default", old)
    assert memory_layer.receive(["dest.a"]) == ("dest.a", {"n": 1})


def test_a_send_that_may_have_gone_out_deletes_the_row_so_it_is_never_sent_twice(
        redis_url, unique_prefix):
    """Redis ran the push but its reply was lost: the message may be there, so the row must
    not stay behind to be sent again."""
    proxy = FaultProxy(redis_url)
    layer = RedisChannelLayer(hosts=[proxy.url], prefix=unique_prefix)
    try:
        layer.send("dest.warm-up", {})  # the push script is known to the server from now on
        row = stored()
        proxy.hold_reply_after(b"EVALSHA")

        def cut_once_pushed() -> None:
            if proxy.seen.wait(5):
                proxy.cut_all()
            proxy.release()

        cutter = threading.Thread(target=cut_once_pushed)
        cutter.start()
        with pytest.raises(LayerUnavailable) as raised:
            row.send(ChannelLayerWrapper(layer, "default", []))
        cutter.join(10)
        assert raised.value.maybe_written
        assert not DelayedMessage.objects.exists()
        assert layer.receive(["dest.a"]) == ("dest.a", {"n": 1})  # it had gone out
    finally:
        layer.flush()
        layer.close()
        proxy.close()
