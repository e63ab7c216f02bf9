"""The delay worker in-process (a thread) on the in-memory layer: timing, bad input, full
channels, stopping."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest

from channels.asgi import ChannelLayerWrapper
from channels.delay.models import DelayedMessage
from channels.delay.worker import InvalidDelayMessage, Worker, parse_delay_message
from channels.layers.inmemory import InMemoryChannelLayer
from channels.layers.redis import RedisChannelLayer
from tests.core.processes import free_port

from .conftest import receive_on, running_worker

pytestmark = pytest.mark.django_db(transaction=True)

#: How late a message may arrive (ms) on an idle worker.
LATE_MS = 50


def send_delayed(layer, delay: int, channel: str = "dest.a", **content) -> float:
    """Hand a message to the delay server; the wall-clock time it was sent."""
    sent_at = time.time()
    layer.send("asgi.delay", {"channel": channel, "delay": delay, "content": content})
    return sent_at


def test_a_message_arrives_once_at_its_due_time(memory_layer):
    with running_worker(memory_layer, database_sleep_duration=5) as worker:
        sent_at = send_delayed(memory_layer, 300, n=1)
        content, arrived = receive_on(memory_layer, "dest.a")
        assert content == {"n": 1}
        late_ms = (arrived - sent_at) * 1000 - 300
        assert 0 <= late_ms <= LATE_MS, late_ms
        assert memory_layer.receive(["dest.a"], block=True) == (None, None)  # waits 0.2 s
    assert worker.sent == 1 and worker.stored == 1
    assert not DelayedMessage.objects.exists()


def test_a_new_message_due_sooner_cuts_a_long_wait_short(memory_layer):
    """Waiting for a row due in 5 s, the worker still takes in a message due in 100 ms and
    sends it on time, before the first."""
    with running_worker(memory_layer, database_sleep_duration=5):
        send_delayed(memory_layer, 5000, channel="dest.late", n="late")
        sent_at = send_delayed(memory_layer, 100, n="soon")
        content, arrived = receive_on(memory_layer, "dest.a")
        assert content == {"n": "soon"}
        assert 0 <= (arrived - sent_at) * 1000 - 100 <= LATE_MS
        assert memory_layer.receive(["dest.late"]) == (None, None)


def test_messages_with_the_same_due_time_all_go_out(memory_layer):
    with running_worker(memory_layer) as worker:
        for n in range(2):  # destination capacity is 2
            send_delayed(memory_layer, 200, n=n)
        received = [receive_on(memory_layer, "dest.a")[0]["n"] for _ in range(2)]
    assert sorted(received) == [0, 1]
    assert worker.sent == 2


@pytest.mark.parametrize("message, reason", [
    ({"content": {}, "delay": 10}, r"missing key\(s\) 'channel'"),
    ({"channel": "dest.a", "delay": 10}, r"missing key\(s\) 'content'"),
    ({"channel": "dest.a", "content": {}}, r"missing key\(s\) 'delay'"),
    ({"channel": "dest.a", "content": {}, "delay": "10"}, r"'delay' must be a non-negative int"),
    ({"channel": "dest.a", "content": {}, "delay": 1.5}, r"'delay' must be a non-negative int"),
    ({"channel": "dest.a", "content": {}, "delay": True}, r"'delay' must be a non-negative int"),
    ({"channel": "dest.a", "content": {}, "delay": -1}, r"'delay' must be a non-negative int"),
    ({"channel": "dest.a", "content": {}, "delay": 10**20}, r"'delay' is too far"),
    ({"channel": "bad name!", "content": {}, "delay": 10}, r"bad 'channel'"),
    ({"channel": 5, "content": {}, "delay": 10}, r"bad 'channel'"),
    ({"channel": "dest.a", "content": [1], "delay": 10}, r"'content' must be a dict"),
    ({"channel": "dest.a", "content": {"b": b"\x00"}, "delay": 10},
     r"'content' cannot be stored as JSON"),
])
def test_parse_refuses_an_invalid_message_saying_why(message, reason):
    with pytest.raises(InvalidDelayMessage, match=reason):
        parse_delay_message(message)


def test_invalid_messages_are_logged_on_one_line_each_and_skipped(memory_layer, delay_log):
    invalid = [
        {"content": {}, "delay": 10},
        {"channel": "dest.a", "content": {}, "delay": -5},
        {"channel": "no spaces", "content": {}, "delay": 10},
        {"channel": "dest.a", "content": "text", "delay": 10},
    ]
    with running_worker(memory_layer) as worker:
        for message in invalid:
            memory_layer.send("asgi.delay", message)
        send_delayed(memory_layer, 50, n="after")
        # The loop went on: the valid message after them is delivered.
        assert receive_on(memory_layer, "dest.a")[0] == {"n": "after"}
    errors = delay_log.lines(logging.ERROR)
    assert len(errors) == len(invalid), errors
    assert all(line.startswith("Skipped an invalid asgi.delay message: ") for line in errors)
    assert all("\n" not in line for line in errors)
    assert worker.invalid == len(invalid) and worker.sent == 1


def test_a_full_destination_is_retried_until_it_has_room(memory_layer, delay_log):
    memory_layer.send("dest.a", {"filler": 1})
    memory_layer.send("dest.a", {"filler": 2})
    with running_worker(memory_layer, requeue_delay=300) as worker:
        send_delayed(memory_layer, 0, n="delayed")
        delay_log.wait_for(r"Channel dest\.a is full; message due again in 300 ms")
        requeued_at = time.time()
        assert memory_layer.receive(["dest.a"])[1] == {"filler": 1}  # room for one
        assert memory_layer.receive(["dest.a"])[1] == {"filler": 2}
        content, arrived = receive_on(memory_layer, "dest.a")
        assert content == {"n": "delayed"}
        # Not before the requeue delay is over (some of it passed before requeued_at).
        assert arrived - requeued_at >= 0.2
    assert worker.requeued >= 1 and worker.sent == 1


def test_an_undeliverable_row_is_dropped_with_one_line_and_others_still_go(memory_layer,
                                                                            delay_log):
    DelayedMessage.objects.create(channel_name="dest.a", content="not json", delay=0)
    DelayedMessage.objects.create(channel_name="dest.a", content="[1, 2]", delay=0)
    DelayedMessage.objects.create(channel_name="dest.a", content=json.dumps({"ok": 1}), delay=0)
    with running_worker(memory_layer) as worker:
        assert receive_on(memory_layer, "dest.a")[0] == {"ok": 1}
        delay_log.wait_for(r"Dropped a delayed message for 'dest\.a' that cannot be sent",
                           count=2)
    assert worker.sent == 1
    assert not DelayedMessage.objects.exists()


def test_stop_ends_a_long_wait_at_once(delay_log):
    """Stopping never waits for the sleep bound, only for the layer's blocking receive."""
    layer = ChannelLayerWrapper(InMemoryChannelLayer(blocking_timeout=0.3), "default", [])
    with running_worker(layer, database_sleep_duration=30) as worker:
        delay_log.wait_for(r"Waiting up to 30\.000s")
        began = time.monotonic()
        worker.stop()
    assert time.monotonic() - began < 0.8


def test_a_stop_before_run_returns_at_once():
    layer = ChannelLayerWrapper(InMemoryChannelLayer(blocking_timeout=0.3), "default", [])
    worker = Worker(layer, signal_handlers=False, database_sleep_duration=30)
    worker.stop()
    thread = threading.Thread(target=worker.run)
    began = time.monotonic()
    thread.start()
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - began < 0.8


@pytest.mark.parametrize("sleep", [0, -1, float("inf"), "1", True])
def test_the_sleep_bound_must_be_a_positive_number(memory_layer, sleep):
    with pytest.raises(ValueError, match="database_sleep_duration"):
        Worker(memory_layer, database_sleep_duration=sleep)


def test_a_layer_that_is_down_keeps_the_rows_and_the_worker_running(delay_log):
    down = RedisChannelLayer(hosts=[f"redis://127.0.0.1:{free_port()}/0"], blocking_timeout=0.2)
    layer = ChannelLayerWrapper(down, "default", [])
    row = DelayedMessage.objects.create(channel_name="dest.a", content='{"n": 1}', delay=0)
    try:
        with running_worker(layer):
            # It tries, fails, backs off and tries again: the loop survives.
            delay_log.wait_for(r"Delay server step failed; retrying in 0\.2s")
            delay_log.wait_for(r"Receiving on asgi\.delay failed")
    finally:
        down.close()
    kept = DelayedMessage.objects.get()
    assert (kept.pk, kept.due_date, kept.content) == (row.pk, row.due_date, row.content)


class _RefusingLayer(InMemoryChannelLayer):
    """A layer that answers sends to ``dest.refused`` with an error of its own kind, as a
    third-party layer (or a Redis error reply such as OOM or READONLY) may."""

    def send(self, channel, message):
        if channel == "dest.refused":
            raise RuntimeError("the backend refused the write")
        super().send(channel, message)


def test_a_send_failing_mid_batch_does_not_send_the_earlier_rows_again(delay_log):
    """Rows sent before the failing one stay deleted: a rollback of the whole batch would put
    them back and send them again on every retry."""
    backend = _RefusingLayer(blocking_timeout=0.2)
    layer = ChannelLayerWrapper(backend, "default", [])
    first = DelayedMessage.objects.create(channel_name="dest.a", content='{"n": 1}', delay=-30)
    refused = DelayedMessage.objects.create(channel_name="dest.refused", content='{"n": 2}',
                                            delay=-20)
    last = DelayedMessage.objects.create(channel_name="dest.a", content='{"n": 3}', delay=-10)
    try:
        with running_worker(layer):
            assert receive_on(layer, "dest.a")[0] == {"n": 1}
            delay_log.wait_for(r"Delay server step failed; retrying in 0\.2s")
            delay_log.wait_for(r"Delay server step failed; retrying in 0\.4s")
        assert layer.receive(["dest.a"]) == (None, None)  # n=1 once, n=3 still behind n=2
    finally:
        backend.close()
    kept = {row.pk: (row.channel_name, row.due_date) for row in DelayedMessage.objects.all()}
    assert kept == {refused.pk: ("dest.refused", refused.due_date),
                    last.pk: ("dest.a", last.due_date)}
    assert first.pk not in kept
