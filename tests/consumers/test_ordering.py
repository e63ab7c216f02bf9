"""enforce_ordering: strict and slight, parking, release, overflow, real worker threads."""

from __future__ import annotations

import pytest
from django.test import override_settings

from channels import route
from channels.asgi import ChannelLayerWrapper, channel_layers
from channels.layers.inmemory import InMemoryChannelLayer
from channels.message import Message
from channels.sessions import (
    NEXT_ORDER_KEY,
    ORDERING_OVERFLOW_CLOSE_CODE,
    enforce_ordering,
    session_for_reply_channel,
    wait_channel_name,
)
from channels.test import ChannelTestCase, Client, WSClient, apply_routes


def _recording_routes(log, slight=False):
    @enforce_ordering(slight=slight)
    def consumer(message):
        log.append((message.channel.name, message["order"]))
        message.reply_channel.send({"text": f"reply {message['order']}"})

    return [route("websocket.connect", consumer), route("websocket.receive", consumer),
            route("websocket.disconnect", consumer)]


def _parked(client):
    """Messages waiting for their turn, on the socket's slight and per-order wait channels."""
    layer = channel_layers["default"].channel_layer
    names = [wait_channel_name(client.reply_channel)] + [
        wait_channel_name(client.reply_channel, order) for order in range(20)]
    return sum(layer.channel_statistics(name)["messages_pending"] for name in names)


class StrictOrderingTests(ChannelTestCase):
    def test_receive_waits_for_connect(self):
        log = []
        client = WSClient(ordered=True)
        with apply_routes(_recording_routes(log)):
            client.send("websocket.connect")  # order 0
            client.send("websocket.receive", {"text": "hi"})  # order 1
            # A worker happens to take the receive first: it must not run yet.
            client.consume("websocket.receive")
            assert log == []
            assert client.get_next_message("websocket.receive") is None
            assert _parked(client) == 1
            client.consume("websocket.connect", check_accept=False)
            assert log == [("websocket.connect", 0)]
            # The connect released the receive, after its own reply.
            assert client.receive(json=False) == "reply 0"
            client.consume("websocket.receive")
        assert log == [("websocket.connect", 0), ("websocket.receive", 1)]
        assert client.receive(json=False) == "reply 1"
        assert _parked(client) == 0

    def test_only_the_next_message_is_released(self):
        log = []
        client = WSClient(ordered=True)
        with apply_routes(_recording_routes(log)):
            for _ in range(4):
                client.send("websocket.receive", {"text": "x"})  # orders 0..3
            # Taken in reverse: 3, 2, 1 park, 0 runs.
            contents = [client.get_next_message("websocket.receive").content for _ in range(4)]
            for content in reversed(contents):
                channel_layers["default"].send("websocket.receive", content)
            for _ in range(3):
                client.consume("websocket.receive")
            assert log == [] and _parked(client) == 3
            client.consume("websocket.receive")  # order 0
            assert _parked(client) == 2  # only order 1 went back, nothing bounces
            for _ in range(3):
                client.consume("websocket.receive")
        assert [order for _, order in log] == [0, 1, 2, 3]
        assert client.get_next_message("websocket.receive") is None

    def test_duplicate_order_is_dropped(self):
        log = []
        client = Client()
        with apply_routes(_recording_routes(log)):
            client.send_and_consume("websocket.connect", {"order": 0})
            client.send_and_consume("websocket.receive", {"order": 0, "text": "again"})
        assert log == [("websocket.connect", 0)]
        assert _parked(client) == 0

    def test_failed_consumer_still_takes_its_turn_and_releases_at_once(self):
        calls = []

        @enforce_ordering
        def consumer(message):
            calls.append(message["order"])
            if message["order"] == 0:
                raise RuntimeError("connect failed")

        client = WSClient(ordered=True)
        with apply_routes([route("websocket.connect", consumer),
                           route("websocket.receive", consumer)]):
            client.send("websocket.connect")
            client.send_and_consume("websocket.receive", {"text": "x"})
            with pytest.raises(RuntimeError):
                client.consume("websocket.connect", check_accept=False)
            client.consume("websocket.receive")
        assert calls == [0, 1]
        session = session_for_reply_channel(client.reply_channel)
        assert session[NEXT_ORDER_KEY] == 2

    def test_message_without_order_is_a_clear_error(self):
        @enforce_ordering
        def consumer(message):
            pass

        client = Client()
        with apply_routes([route("websocket.receive", consumer)]):
            with pytest.raises(ValueError, match="integer 'order'"):
                client.send_and_consume("websocket.receive", {"text": "x"})

    @override_settings(CHANNELS_ORDERING_MAX_WAITING=2)
    def test_message_too_far_ahead_closes_the_socket_and_lets_disconnect_clean_up(self):
        log = []
        client = Client()
        with apply_routes(_recording_routes(log)):
            for order in (1, 2, 3):
                client.send_and_consume("websocket.receive", {"order": order, "text": "x"})
            # Order 3 is more than 2 ahead of the expected 0: order can no longer be kept.
            assert client.receive() == {"close": ORDERING_OVERFLOW_CLOSE_CODE}
            # The waiting ones were let go; they belong to a closed socket and are dropped.
            assert _parked(client) == 0
            while client.get_next_message("websocket.receive") is not None:
                pass
            client.send_and_consume("websocket.receive", {"order": 4, "text": "x"})
            client.send_and_consume("websocket.disconnect", {"order": 5, "code": 1013})
        assert log == [("websocket.disconnect", 5)]

    def test_waiting_message_released_when_its_turn_came_during_parking(self):
        # The race: order 0 finished (and released nothing) between this worker's session read
        # and its park. The parking worker must notice and release the message itself.
        log = []
        client = Client()
        routes = _recording_routes(log)
        with apply_routes(routes):
            stale = session_for_reply_channel(client.reply_channel)  # read before order 0 ran
            client.send_and_consume("websocket.connect", {"order": 0})
            assert client.receive() == {"text": "reply 0"}
            message = Message({"order": 1, "text": "x", "reply_channel": client.reply_channel},
                              "websocket.receive", channel_layers["default"])
            message.channel_session = stale
            assert stale.get(NEXT_ORDER_KEY, 0) == 0
            routes[1].consumer(message)  # parks (stale says 0), then re-checks the store
            assert log == [("websocket.connect", 0)]
            assert _parked(client) == 0
            client.consume("websocket.receive")
        assert log == [("websocket.connect", 0), ("websocket.receive", 1)]


class SlightOrderingTests(ChannelTestCase):
    def test_receives_wait_for_connect_then_run_in_any_order(self):
        log = []
        client = WSClient(ordered=True)
        with apply_routes(_recording_routes(log, slight=True)):
            client.send("websocket.connect")
            client.send("websocket.receive", {"text": "1"})
            client.send("websocket.receive", {"text": "2"})
            first = client.get_next_message("websocket.receive").content
            second = client.get_next_message("websocket.receive").content
            channel_layers["default"].send("websocket.receive", second)
            channel_layers["default"].send("websocket.receive", first)
            client.consume("websocket.receive")
            client.consume("websocket.receive")
            assert log == [] and _parked(client) == 2
            client.consume("websocket.connect", check_accept=False)
            assert _parked(client) == 0
            client.consume("websocket.receive")
            client.consume("websocket.receive")
        assert log[0] == ("websocket.connect", 0)
        assert sorted(order for _, order in log[1:]) == [1, 2]

    def test_full_wait_channel_closes_the_socket(self):
        small = ChannelLayerWrapper(
            InMemoryChannelLayer(channel_capacity={"__wait__.*": 2}), "default",
            channel_layers["default"].routing)
        channel_layers.set("default", small)
        log = []
        client = Client()
        with apply_routes(_recording_routes(log, slight=True)):
            for order in (1, 2, 3):
                client.send_and_consume("websocket.receive", {"order": order, "text": "x"})
            assert client.receive() == {"close": ORDERING_OVERFLOW_CLOSE_CODE}
            assert _parked(client) == 0
            client.send_and_consume("websocket.disconnect", {"order": 4, "code": 1013})
        assert log == [("websocket.disconnect", 4)]

    def test_after_connect_out_of_order_messages_run_at_once(self):
        log = []
        client = Client()
        with apply_routes(_recording_routes(log, slight=True)):
            client.send_and_consume("websocket.connect", {"order": 0})
            client.send_and_consume("websocket.receive", {"order": 3, "text": "x"})
            client.send_and_consume("websocket.receive", {"order": 1, "text": "x"})
        assert [order for _, order in log] == [0, 3, 1]


# Four real workers share the channels; each socket's messages still run in order.


def test_strict_order_holds_across_concurrent_workers(sessions_in_locmem_cache, default_layer,
                                                      worker_threads, socket_traffic,
                                                      order_recorder):
    recorder = order_recorder(sockets=6, per_socket=8 + 2)

    @enforce_ordering
    def consumer(message):
        recorder.record(message)
        message.reply_channel.send({"text": str(message["order"])})

    default_layer(InMemoryChannelLayer(blocking_timeout=0.05),
                  [route("websocket.connect", consumer), route("websocket.receive", consumer),
                   route("websocket.disconnect", consumer)])
    traffic = socket_traffic(sockets=6, frames=8, disconnect=True, seed=7)
    worker_threads.start(4)
    traffic.send_all()
    recorder.wait()
    worker_threads.stop()
    for client in traffic.clients:
        assert recorder.runs[client.reply_channel] == list(range(traffic.messages_per_socket))
        assert traffic.replies(client) == list(range(traffic.messages_per_socket))


def test_slight_order_runs_connect_first_across_concurrent_workers(
        sessions_in_locmem_cache, default_layer, worker_threads, socket_traffic, order_recorder):
    recorder = order_recorder(sockets=6, per_socket=8 + 1)

    @enforce_ordering(slight=True)
    def consumer(message):
        recorder.record(message)

    default_layer(InMemoryChannelLayer(blocking_timeout=0.05),
                  [route("websocket.connect", consumer), route("websocket.receive", consumer)])
    traffic = socket_traffic(sockets=6, frames=8, disconnect=False, seed=3)
    worker_threads.start(4)
    traffic.send_all()
    recorder.wait()
    for client in traffic.clients:
        orders = recorder.runs[client.reply_channel]
        assert orders[0] == 0
        assert sorted(orders) == list(range(traffic.messages_per_socket))


def test_wait_channel_names_are_valid_layer_names():
    from channels.layers.base import validate_channel_name

    for reply in ("websocket.send.abc!xyz", "plainname", "a" * 95 + "!local", "x?single"):
        for order in (None, 0, 123456):
            name = wait_channel_name(reply, order)
            assert validate_channel_name(name) == name and len(name) <= 100
    assert wait_channel_name("a!b", 1) != wait_channel_name("a!b", 2)
    assert wait_channel_name("a!b") != wait_channel_name("a!c")
