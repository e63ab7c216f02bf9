"""BaseConsumer, WebsocketConsumer, JsonWebsocketConsumer, (de)multiplexing."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from channels import Group, route_class
from channels.exceptions import DenyConnection, SendNotAvailableOnDemultiplexer
from channels.generic import BaseConsumer
from channels.generic.websockets import (
    JsonWebsocketConsumer,
    WebsocketConsumer,
    WebsocketDemultiplexer,
    WebsocketMultiplexer,
)
from channels.sessions import session_for_reply_channel
from channels.test import ChannelTestCase, Client, WSClient, apply_routes


class BaseConsumerTests(ChannelTestCase):
    def test_method_mapping_dispatches_by_channel(self):
        calls = []

        class Consumer(BaseConsumer):
            method_mapping = {"test.a": "on_a", "test.b": "on_b"}

            def on_a(self, message, **kwargs):
                calls.append(("a", message["value"], kwargs))

            def on_b(self, message, **kwargs):
                calls.append(("b", message["value"], kwargs))

        assert Consumer.channel_names() == {"test.a", "test.b"}
        client = Client()
        with apply_routes([route_class(Consumer, value=r"^(?P<v>\d+)$")]):
            client.send_and_consume("test.a", {"value": "1"})
            instance = client.send_and_consume("test.b", {"value": "2"})
        assert calls == [("a", "1", {"v": "1"}), ("b", "2", {"v": "2"})]
        assert isinstance(instance, Consumer) and instance.kwargs == {"v": "2"}

    def test_channel_session_flag(self):
        class Consumer(BaseConsumer):
            method_mapping = {"test.a": "on_a"}
            channel_session = True

            def on_a(self, message, **kwargs):
                message.channel_session["hit"] = True

        client = Client()
        with apply_routes([Consumer.as_route()]):
            client.send_and_consume("test.a")
        assert session_for_reply_channel(client.reply_channel)["hit"] is True

    def test_as_route_with_attrs_makes_a_subclass(self):
        class Consumer(BaseConsumer):
            method_mapping = {"test.a": "on_a"}
            greeting = "hello"

            def on_a(self, message, **kwargs):
                message.reply_channel.send({"text": self.greeting})

        entry = Consumer.as_route(attrs={"greeting": "bonjour"})
        assert entry.consumer is not Consumer and entry.consumer.__name__ == "Consumer"
        client = Client()
        with apply_routes([entry]):
            client.send_and_consume("test.a")
        assert client.receive() == {"text": "bonjour"}
        assert Consumer.greeting == "hello"

    def test_unmapped_channel_is_a_clear_error(self):
        class Consumer(BaseConsumer):
            method_mapping = {"test.a": "on_a"}

        with apply_routes([route_class(Consumer)]):
            from channels.asgi import channel_layers
            from channels.message import Message

            with pytest.raises(ValueError, match="no method mapped"):
                Consumer(Message({}, "test.z", channel_layers["default"]))


class Room(WebsocketConsumer):
    def connection_groups(self, room, **kwargs):
        return [f"room-{room}"]

    def receive(self, text=None, bytes=None, **kwargs):
        if text == "close":
            self.close(4000)
        elif text is not None:
            self.send(text=text.upper())
        else:
            self.send(bytes=bytes[::-1])

    def disconnect(self, message, **kwargs):
        Group("left").send({"text": message.reply_channel.name})


class WebsocketConsumerTests(ChannelTestCase):
    routes = [Room.as_route(path=r"^/room/(?P<room>\w+)/$")]

    def test_connect_accepts_and_joins_groups(self):
        client = WSClient(path="/room/lobby/")
        with apply_routes(self.routes):
            consumer = client.send_and_consume("websocket.connect")
            assert consumer.path == "/room/lobby/"
            assert client.reply_channel in client.channel_layer.group_channels("room-lobby")
            Room.group_send("room-lobby", text="to everyone")
            assert client.receive(json=False) == "to everyone"

    def test_text_and_bytes_frames(self):
        client = WSClient(path="/room/a/")
        with apply_routes(self.routes):
            client.send_and_consume("websocket.connect")
            client.send_and_consume("websocket.receive", text="hi")
            client.send_and_consume("websocket.receive", {"bytes": b"abc"})
            client.send_and_consume("websocket.receive", text="close")
        assert client.receive(json=False) == "HI"
        assert client.receive() == {"bytes": b"cba"}
        assert client.receive() == {"close": 4000}

    def test_disconnect_leaves_groups_then_calls_disconnect(self):
        watcher = Client()
        watcher.join_group("left")
        client = WSClient(path="/room/b/")
        with apply_routes(self.routes):
            client.send_and_consume("websocket.connect")
            client.send_and_consume("websocket.disconnect", {"code": 1000})
        assert client.channel_layer.group_channels("room-b") == []
        assert watcher.receive() == {"text": client.reply_channel}

    def test_refused_connect_leaves_its_groups(self):
        class Refuser(Room):
            def connect(self, message, **kwargs):
                raise DenyConnection()

        client = WSClient(path="/room/c/")
        with apply_routes([Refuser.as_route(path=r"^/room/(?P<room>\w+)/$")]):
            with pytest.raises(DenyConnection):
                client.send_and_consume("websocket.connect", check_accept=False)
        assert client.receive() == {"close": True}
        assert client.channel_layer.group_channels("room-c") == []

    def test_send_validates_arguments(self):
        with pytest.raises(ValueError):
            WebsocketConsumer.encode_frame()
        # Passed on as Channels 1.1 did (with a warning); the server drops such a frame.
        assert WebsocketConsumer.encode_frame(text=b"bytes as text") == {"text": b"bytes as text"}
        assert WebsocketConsumer.encode_frame(close=True) == {"close": True}
        assert WebsocketConsumer.encode_frame(text="t", close=1001) == {"text": "t",
                                                                         "close": 1001}

    def test_strict_ordering_attribute(self):
        seen = []

        class Ordered(WebsocketConsumer):
            strict_ordering = True

            def receive(self, text=None, bytes=None, **kwargs):
                seen.append(text)

        client = WSClient(ordered=True)
        with apply_routes([Ordered.as_route()]):
            client.send("websocket.connect")
            client.send("websocket.receive", text="one")
            client.consume("websocket.receive")
            assert seen == []
            client.consume("websocket.connect")
            client.consume("websocket.receive")
        assert seen == ["one"]

    def test_slight_ordering_attribute_works(self):
        seen = []

        class Slight(WebsocketConsumer):
            slight_ordering = True

            def receive(self, text=None, bytes=None, **kwargs):
                seen.append(text)

        client = WSClient(ordered=True)
        with apply_routes([Slight.as_route()]):
            client.send("websocket.connect")
            client.send("websocket.receive", text="1")
            client.send("websocket.receive", text="2")
            client.consume("websocket.receive")
            assert seen == []
            client.consume("websocket.connect")
            client.consume("websocket.receive")
            client.consume("websocket.receive")
        assert sorted(seen) == ["1", "2"]


class Echo(JsonWebsocketConsumer):
    def receive(self, content, **kwargs):
        self.send({"echo": content})


class JsonConsumerTests(ChannelTestCase):
    def test_json_round_trip_and_group_send(self):
        client = WSClient()
        with apply_routes([Echo.as_route()]):
            client.send_and_consume("websocket.connect")
            client.send_and_consume("websocket.receive", text={"a": [1, 2]})
            client.join_group("json-group")
            Echo.group_send("json-group", {"to": "all"})
        assert client.receive() == {"echo": {"a": [1, 2]}}
        assert client.receive() == {"to": "all"}

    def test_bad_json_and_binary_frames_are_clear_errors(self):
        client = WSClient()
        with apply_routes([Echo.as_route()]):
            with pytest.raises(ValueError, match="not JSON"):
                client.send_and_consume("websocket.receive", text="{nope")
            with pytest.raises(ValueError, match="only takes text"):
                client.send_and_consume("websocket.receive", {"bytes": b"x"})
        assert client.receive() is None

    def test_custom_encoding(self):
        class Upper(JsonWebsocketConsumer):
            @classmethod
            def encode_json(cls, content):
                return json.dumps(content).upper()

            def receive(self, content, **kwargs):
                self.send(content)

        client = WSClient()
        with apply_routes([Upper.as_route()]):
            client.send_and_consume("websocket.receive", text={"a": "b"})
        assert client.receive(json=False) == '{"A": "B"}'


    def test_custom_decoding(self):
        class Loose(JsonWebsocketConsumer):
            @classmethod
            def decode_json(cls, text):
                return {"said": text}  # accepts plain text, not only JSON

            def receive(self, content, **kwargs):
                self.send(content)

        client = WSClient()
        with apply_routes([Loose.as_route()]):
            client.send_and_consume("websocket.receive", text="not json at all")
        assert client.receive() == {"said": "not json at all"}

    def test_group_send_uses_the_custom_encoding(self):
        class Upper(JsonWebsocketConsumer):
            @classmethod
            def encode_json(cls, content):
                return json.dumps(content).upper()

        client = Client()
        client.join_group("upper-group")
        Upper.group_send("upper-group", {"a": "b"})
        assert client.receive() == {"text": '{"A": "B"}'}


class Streams(WebsocketDemultiplexer):
    consumers = {"echo": Echo, "other": Echo}


class DemultiplexerTests(ChannelTestCase):
    def test_frames_reach_the_stream_consumer_and_replies_carry_the_stream(self):
        client = WSClient()
        with apply_routes([Streams.as_route()]):
            client.send_and_consume("websocket.connect")
            client.send_and_consume("websocket.receive",
                                    text={"stream": "echo", "payload": {"n": 1}})
        assert client.receive() == {"stream": "echo", "payload": {"echo": {"n": 1}}}
        assert client.receive() is None  # exactly one accept (taken by consume), one reply

    def test_bad_frames_are_clear_errors(self):
        client = WSClient()
        with apply_routes([Streams.as_route()]):
            for frame, match in (({"payload": {}}, "stream"), ([1], "stream"),
                                 ({"stream": "nope", "payload": {}}, "No consumer"),
                                 ({"stream": "echo", "payload": 3}, "JSON object")):
                with pytest.raises(ValueError, match=match):
                    client.send_and_consume("websocket.receive", text=frame)

    def test_send_on_demultiplexer_is_refused(self):
        with pytest.raises(SendNotAvailableOnDemultiplexer):
            Streams.group_send("g", {"x": 1})

        class Talkative(WebsocketDemultiplexer):
            consumers = {"echo": Echo}

            def connect(self, message, **kwargs):
                self.send({"hello": True})  # the demultiplexer itself has no stream to use

        client = WSClient()
        with apply_routes([Talkative.as_route()]), \
                pytest.raises(SendNotAvailableOnDemultiplexer):
            client.send_and_consume("websocket.connect", check_accept=False)

    def test_custom_multiplexer_class(self):
        class Tagged(WebsocketMultiplexer):
            def send(self, payload):
                super().send({"tagged": payload})

        class TaggedStreams(WebsocketDemultiplexer):
            consumers = {"echo": Echo}
            multiplexer_class = Tagged

        client = WSClient()
        with apply_routes([TaggedStreams.as_route()]):
            client.send_and_consume("websocket.connect")
            client.send_and_consume("websocket.receive",
                                    text={"stream": "echo", "payload": {"n": 2}})
        assert client.receive() == {"stream": "echo", "payload": {"tagged": {"echo": {"n": 2}}}}

    def test_multiplexer_group_send(self):
        client = Client()
        client.join_group("mux")
        WebsocketMultiplexer.group_send("mux", "stream-a", {"when": "now"})
        content = client.receive()
        assert json.loads(content["text"]) == {"stream": "stream-a", "payload": {"when": "now"}}

    def test_connect_and_disconnect_reach_every_stream(self):
        seen = []

        class Tracker(JsonWebsocketConsumer):
            def connect(self, message, multiplexer=None, **kwargs):
                seen.append(("connect", multiplexer.stream))

            def disconnect(self, message, multiplexer=None, **kwargs):
                seen.append(("disconnect", multiplexer.stream))

        class Mux(WebsocketDemultiplexer):
            consumers = {"a": Tracker, "b": Tracker}

        client = WSClient()
        with apply_routes([Mux.as_route()]):
            client.send_and_consume("websocket.connect")
            client.send_and_consume("websocket.disconnect", {"code": 1000})
        assert seen == [("connect", "a"), ("connect", "b"), ("disconnect", "a"),
                        ("disconnect", "b")]

    def test_ordering_on_the_demultiplexer_covers_its_streams(self):
        # channels#656: order 0 must reach every stream, not just the first.
        seen = []

        class Tracker(JsonWebsocketConsumer):
            strict_ordering = True

            def connect(self, message, multiplexer=None, **kwargs):
                seen.append(multiplexer.stream)

        class Mux(WebsocketDemultiplexer):
            strict_ordering = True
            consumers = {"a": Tracker, "b": Tracker}

        client = WSClient(ordered=True)
        with apply_routes([Mux.as_route()]):
            client.send_and_consume("websocket.connect")
        assert seen == ["a", "b"]


@override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
class HttpUserTests(ChannelTestCase):
    def test_http_user_and_session_keep_both_on_later_frames(self):
        from django.contrib.auth.models import User

        seen = []

        class Consumer(WebsocketConsumer):
            http_user_and_session = True

            def connect(self, message, **kwargs):
                seen.append((message.user.username, message.http_session["colour"]))
                self.accept()

            def receive(self, text=None, bytes=None, **kwargs):
                seen.append((self.message.user.username, self.message.http_session["colour"]))

        client = WSClient()
        client.force_login(User.objects.create_user("dora"))
        client.session["colour"] = "teal"
        client.session.save()
        with apply_routes([Consumer.as_route()]):
            client.send_and_consume("websocket.connect")
            client.send_and_consume("websocket.receive", {"headers": []}, text="x")
        assert seen == [("dora", "teal"), ("dora", "teal")]

    def test_base_consumer_http_user_reads_the_cookie_of_each_message(self):
        from django.contrib.auth.models import User

        seen = []

        class Consumer(BaseConsumer):
            method_mapping = {"test.http": "handle"}
            http_user = True

            def handle(self, message, **kwargs):
                seen.append(message.user.username or "anonymous")

        client = WSClient()
        client.force_login(User.objects.create_user("erin"))
        with apply_routes([Consumer.as_route()]):
            client.send_and_consume("test.http")  # carries the session cookie
            Client().send_and_consume("test.http", {"headers": []})
        assert seen == ["erin", "anonymous"]
