"""Message, Channel, Group and the pending-send buffer; the exceptions' own behaviour."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from channels import Channel, Group
from channels.exceptions import WebsocketCloseException
from channels.message import Message, PendingSendLimitExceeded, pending_message_store
from channels.signals import consumer_finished, consumer_started


def test_message_is_dict_like_and_copy_is_deep(layer):
    message = Message({"text": "hi", "nested": {"a": [1]}, "reply_channel": "websocket.send.p!c"},
                      "websocket.receive", layer)
    assert message["text"] == "hi" and "text" in message and message.get("missing", 3) == 3
    assert set(message.keys()) == {"text", "nested", "reply_channel"}
    assert message.channel.name == "websocket.receive"
    assert message.reply_channel.name == "websocket.send.p!c"
    assert message.channel_layer is layer
    copied = message.copy()
    copied["nested"]["a"].append(2)
    assert message["nested"] == {"a": [1]}


def test_message_without_reply_channel(layer):
    assert Message({}, "x.y", layer).reply_channel is None


@pytest.mark.parametrize("first", ["channels.channel", "channels.message", "channels.worker"])
def test_message_and_channel_import_in_any_order(first):
    """Whichever of them a process imports first, Message builds real Channel objects."""
    code = (f"import {first}\n"
            "from channels.channel import Channel\n"
            "from channels.message import Message\n"
            "m = Message({'reply_channel': 'http.response.p!c'}, 'http.request', object())\n"
            "assert type(m.reply_channel) is Channel and type(m.channel) is Channel\n"
            "print(m.reply_channel.name, m.channel.name)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["http.response.p!c", "http.request"]


def test_channel_send_outside_consumer_is_immediate(layer):
    Channel("test.out").send({"n": 1})
    assert layer.receive(["test.out"]) == ("test.out", {"n": 1})


def test_channel_send_rejects_non_dict(layer):
    with pytest.raises(TypeError):
        Channel("test.out").send("text")
    with pytest.raises(ValueError):
        Group("g").send(["list"])


def test_bytes_channel_names_are_decoded(layer):
    assert Channel(b"test.bytes").name == "test.bytes"


def test_sends_inside_consumer_wait_until_it_finishes(layer):
    consumer_started.send(sender=None)
    try:
        Channel("test.held").send({"n": 1})
        Channel("test.now").send({"n": 2}, immediately=True)
        assert layer.receive(["test.held"]) == (None, None)
        assert layer.receive(["test.now"]) == ("test.now", {"n": 2})
    finally:
        consumer_finished.send(sender=None)
    assert layer.receive(["test.held"]) == ("test.held", {"n": 1})
    # Buffering stopped with the consumer.
    assert not pending_message_store.active


def test_group_send_is_buffered_too(layer):
    Group("room").add("test.member")
    Group("room").add(Channel("test.member2"))
    assert sorted(Group("room").channel_names()) == ["test.member", "test.member2"]
    consumer_started.send(sender=None)
    Group("room").send({"hello": True})
    assert layer.receive(["test.member"]) == (None, None)
    consumer_finished.send(sender=None)
    assert layer.receive(["test.member"]) == ("test.member", {"hello": True})
    Group("room").discard("test.member2")
    assert Group("room").channel_names() == ["test.member"]


def test_discarded_sends_are_never_sent(layer):
    consumer_started.send(sender=None)
    Channel("test.dropped").send({"n": 1})
    assert pending_message_store.discard() == 1
    consumer_finished.send(sender=None)
    assert layer.receive(["test.dropped"]) == (None, None)


def test_buffers_are_per_thread(layer):
    consumer_started.send(sender=None)
    try:
        def other_thread():
            Channel("test.thread").send({"from": "thread"})  # no consumer here: immediate
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join(5)
        assert layer.receive(["test.thread"]) == ("test.thread", {"from": "thread"})
    finally:
        consumer_finished.send(sender=None)


def test_flush_survives_a_full_channel_and_sends_the_rest(layer, monkeypatch, caplog):
    monkeypatch.setattr(pending_message_store, "retry_time", 0.05)
    layer.channel_layer.capacity = 1
    Channel("test.full").send({"n": 0})
    consumer_started.send(sender=None)
    Channel("test.full").send({"n": 1})
    Channel("test.other").send({"n": 2})
    consumer_finished.send(sender=None)  # must not raise
    assert "dropped" in caplog.text
    assert layer.receive(["test.other"]) == ("test.other", {"n": 2})
    assert layer.receive(["test.full"]) == ("test.full", {"n": 0})
    assert layer.receive(["test.full"]) == (None, None)


def test_flush_retries_until_space_frees(layer, monkeypatch):
    layer.channel_layer.capacity = 1
    Channel("test.busy").send({"n": 0})
    consumer_started.send(sender=None)
    Channel("test.busy").send({"n": 1})
    received = []
    reader_started = threading.Event()

    def reader():
        reader_started.set()
        received.append(layer.receive(["test.busy"], block=True))

    thread = threading.Thread(target=reader)
    thread.start()
    reader_started.wait(5)
    consumer_finished.send(sender=None)
    thread.join(5)
    assert received == [("test.busy", {"n": 0})]
    assert layer.receive(["test.busy"]) == ("test.busy", {"n": 1})


def test_pending_buffer_is_bounded(layer, monkeypatch):
    monkeypatch.setattr(pending_message_store, "max_pending", 3)
    consumer_started.send(sender=None)
    try:
        for n in range(3):
            Channel("test.bounded").send({"n": n})
        with pytest.raises(PendingSendLimitExceeded):
            Channel("test.bounded").send({"n": 3})
    finally:
        pending_message_store.discard()
        consumer_finished.send(sender=None)


def test_websocket_close_exception_works_with_server_reply_names(layer):
    message = Message({"reply_channel": "websocket.send.ABCDEF!xyz"}, "websocket.receive", layer)
    consumer_started.send(sender=None)
    WebsocketCloseException(4001).run(message)  # immediate, even inside a consumer
    assert layer.receive(["websocket.send.ABCDEF!"]) == ("websocket.send.ABCDEF!xyz",
                                                         {"close": 4001})
    WebsocketCloseException().run(message)
    assert layer.receive(["websocket.send.ABCDEF!"])[1] == {"close": True}
    consumer_finished.send(sender=None)


def test_websocket_close_exception_refuses_non_websocket_messages(layer):
    message = Message({"reply_channel": "http.response.A!b"}, "http.request", layer)
    with pytest.raises(ValueError, match="websocket"):
        WebsocketCloseException().run(message)


@pytest.mark.parametrize("code", [999, 1001, 2999, 5000, "1000", True, 1000.0])
def test_websocket_close_exception_validates_codes(code):
    with pytest.raises(ValueError, match="invalid close code"):
        WebsocketCloseException(code)


@pytest.mark.parametrize("code", [None, 1000, 3000, 4999])
def test_websocket_close_exception_accepts_valid_codes(code):
    WebsocketCloseException(code)


def test_worker_may_take_buffered_plain_channel_sends_only(layer):
    """``take_channel_sends`` hands over the buffer only when every entry is a plain
    ``channel_layer.send`` (the worker batches those with its next receive); a subclass with
    its own ``send()`` must go through it, so the buffer stays for the usual flush."""

    class CountingChannel(Channel):
        sent = 0

        def send(self, content, immediately=False):
            CountingChannel.sent += 1
            super().send(content, immediately)

    class PlainSubclass(Channel):
        pass

    consumer_started.send(sender=None)
    try:
        Channel("test.plain").send({"n": 1})
        PlainSubclass("test.plain").send({"n": 2})
        taken = pending_message_store.take_channel_sends(layer)
        assert [(sender.name, message) for sender, message, _ in taken] == [
            ("test.plain", {"n": 1}), ("test.plain", {"n": 2})]
        assert not pending_message_store.active
    finally:
        consumer_finished.send(sender=None)

    consumer_started.send(sender=None)
    Channel("test.plain").send({"n": 3})
    assert pending_message_store.take_channel_sends(object()) is None  # another layer's
    CountingChannel("test.counted").send({"n": 4})
    assert pending_message_store.take_channel_sends(layer) is None
    consumer_finished.send(sender=None)
    assert CountingChannel.sent == 2  # once buffered, once sent through it on flush
    assert layer.receive(["test.plain"]) == ("test.plain", {"n": 3})
    assert layer.receive(["test.counted"]) == ("test.counted", {"n": 4})
