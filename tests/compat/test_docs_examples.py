# ruff: noqa: UP031 - the examples keep the %-formatting of the Channels 1.1 docs
"""Code shaped like the Channels 1.1 documentation's examples (getting started, testing,
class consumers), run unchanged on this package."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpResponse
from django.test import override_settings

from channels import Channel, Group, route, route_class
from channels.auth import channel_session_user, channel_session_user_from_http
from channels.generic.websockets import JsonWebsocketConsumer
from channels.handler import AsgiHandler
from channels.sessions import channel_session
from channels.test import ChannelTestCase, Client, HttpClient, apply_routes


def http_consumer(message):
    response = HttpResponse("Hello world! You asked for %s" % message.content["path"])
    for chunk in AsgiHandler.encode_response(response):
        message.reply_channel.send(chunk)


def square(message):
    Channel("output").send({"value": message["value"] ** 2})


def internal(message):
    message.reply_channel.send({"all is": "done"})


@channel_session
def ws_connect(message):
    message.reply_channel.send({"accept": True})
    room = message.content["path"].strip("/")
    message.channel_session["room"] = room
    Group("chat-%s" % room).add(message.reply_channel)


@channel_session
def ws_message(message):
    Group("chat-%s" % message.channel_session["room"]).send({"text": message["text"]})


@channel_session
def ws_disconnect(message):
    Group("chat-%s" % message.channel_session["room"]).discard(message.reply_channel)


@channel_session_user_from_http
def ws_add(message):
    message.reply_channel.send({"accept": True})
    Group("chat").add(message.reply_channel)


@channel_session_user
def ws_user_message(message):
    Group("chat").send({"text": "%s: %s" % (message.user.username, message["text"])})


class EchoConsumer(JsonWebsocketConsumer):
    strict_ordering = False

    def connection_groups(self, **kwargs):
        return ["echo-%s" % kwargs["room"]]

    def receive(self, content, **kwargs):
        self.send({"echo": content, "room": kwargs["room"]})


class GettingStartedTests(ChannelTestCase):
    def test_plain_http_consumer_with_encode_response(self):
        client = Client()
        with apply_routes([route("http.request", http_consumer)]):
            client.send_and_consume("http.request", {"path": "/hi/", "method": "GET"})
        reply = client.receive()
        assert reply["status"] == 200
        assert reply["content"] == b"Hello world! You asked for /hi/"
        assert reply["more_content"] is False

    def test_consumer_run_by_hand_with_get_next_message(self):
        Channel("input").send({"value": 33})
        square(self.get_next_message("input", require=True))
        assert self.get_next_message("output", require=True)["value"] == 1089

    def test_client_send_and_consume_and_receive(self):
        client = Client()
        with apply_routes([route("my_internal_channel", internal)]):
            client.send_and_consume("my_internal_channel", {"value": "my_value"})
        assert client.receive() == {"all is": "done"}

    def test_chat_rooms_with_channel_sessions(self):
        routing = [route("websocket.connect", ws_connect),
                   route("websocket.receive", ws_message),
                   route("websocket.disconnect", ws_disconnect)]
        alice, bob = HttpClient(), HttpClient()
        with apply_routes(routing):
            alice.send_and_consume("websocket.connect", path="/lobby/")
            bob.send_and_consume("websocket.connect", path="/lobby/")
            assert alice.receive() is None  # the accept was checked and taken
            alice.send_and_consume("websocket.receive", text="hello", path="/lobby/")
            assert alice.receive(json=False) == "hello"
            assert bob.receive(json=False) == "hello"
            bob.send_and_consume("websocket.disconnect", path="/lobby/")
            alice.send_and_consume("websocket.receive", text="anyone?", path="/lobby/")
        assert alice.receive(json=False) == "anyone?"
        assert bob.receive() is None

    @override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
    def test_logged_in_user_carried_from_http_session(self):
        User.objects.create_user(username="test", password="123456")
        client = HttpClient()
        assert client.login(username="test", password="123456")
        with apply_routes([route("websocket.connect", ws_add),
                           route("websocket.receive", ws_user_message)]):
            client.send_and_consume("websocket.connect", path="/")
            client.send_and_consume("websocket.receive", text="hi", path="/")
        assert client.receive(json=False) == "test: hi"

    def test_class_consumer_with_url_kwargs_and_groups(self):
        client = HttpClient()
        with apply_routes([route_class(EchoConsumer, path=r"^/echo/(?P<room>\w+)/$")]):
            client.send_and_consume("websocket.connect", path="/echo/red/")
            assert list(client.channel_layer.group_channels("echo-red")) == [client.reply_channel]
            client.send_and_consume("websocket.receive", text={"n": 1}, path="/echo/red/")
            assert client.receive() == {"echo": {"n": 1}, "room": "red"}
            EchoConsumer.group_send("echo-red", {"to": "all"})
            assert client.receive() == {"to": "all"}
            client.send_and_consume("websocket.disconnect", path="/echo/red/")
        assert list(client.channel_layer.group_channels("echo-red")) == []
