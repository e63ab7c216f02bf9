"""Gaps found reviewing the Django side against Channels 1.1, each pinned by a test."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest
from django.core.management.base import OutputWrapper
from django.test import override_settings

from channels import route
from channels.asgi import channel_layers
from channels.exceptions import DenyConnection
from channels.message import Message
from channels.routing import Router
from channels.security.websockets import BaseOriginValidator
from channels.sessions import (
    channel_session,
    channel_session_key,
    enforce_ordering,
    requeue_messages,
    session_for_reply_channel,
)
from channels.test import ChannelTestCase, Client, WSClient, apply_routes

LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


def recorder(message, **kwargs):
    return kwargs


class RoutingFilterTests(ChannelTestCase):
    def match(self, routing, path):
        message = Message({"path": path}, "websocket.connect", channel_layers["default"])
        return Router(routing).match(message)

    def test_compiled_filter_keeps_its_flags(self):
        routing = [route("websocket.connect", recorder,
                         path=re.compile(r"^/CHAT/(?P<room>\w+)/$", re.IGNORECASE))]
        assert self.match(routing, "/chat/Lobby/") == (recorder, {"room": "Lobby"})
        assert self.match(routing, "/other/") is None

    def test_compiled_bytes_filter_is_matched_as_text_with_its_flags(self):
        routing = [route("websocket.connect", recorder,
                         path=re.compile(rb"^/CHAT/", re.IGNORECASE))]
        assert self.match(routing, "/chat/x/") == (recorder, {})


class ChannelSessionKeyTests(ChannelTestCase):
    def test_session_is_keyed_to_the_socket_before_it_is_stored(self):
        reply_channel = "websocket.send.compat!fresh"
        session = session_for_reply_channel(reply_channel)
        assert session.session_key == channel_session_key(reply_channel)
        assert not session.exists(session.session_key)

    @override_settings(CHANNEL_SESSION_ENGINE="django.contrib.sessions.backends.cache",
                       CACHES=LOCMEM)
    def test_a_socket_session_changed_outside_a_consumer_is_the_sockets_session(self):
        @channel_session
        def consumer(message):
            message.reply_channel.send({"text": message.channel_session.get("room", "-")})

        client = Client()
        with apply_routes([route("websocket.receive", consumer)]):
            client.send_and_consume("websocket.receive", {"text": "x"})
            assert client.receive() == {"text": "-"}
            # A view moves the socket to another room through its session.
            session = session_for_reply_channel(client.reply_channel)
            session["room"] = "lobby"
            session.save()
            client.send_and_consume("websocket.receive", {"text": "x"})
        assert client.receive() == {"text": "lobby"}

    def test_saving_a_socket_session_that_is_not_stored_fails_loudly(self):
        """Before: it was saved under a new random key, silently lost to the socket."""
        from django.contrib.sessions.backends.base import UpdateError

        session = session_for_reply_channel("websocket.send.compat!never-connected")
        session["x"] = 1
        with pytest.raises(UpdateError):
            session.save()

    def test_existing_socket_session_is_found_and_not_recreated(self):
        @channel_session
        def consumer(message):
            message.channel_session["n"] = message.channel_session.get("n", 0) + 1

        client = Client()
        with apply_routes([route("websocket.receive", consumer)]):
            client.send_and_consume("websocket.receive", {"text": "a"})
            client.send_and_consume("websocket.receive", {"text": "b"})
        assert session_for_reply_channel(client.reply_channel)["n"] == 2


class RequeueMessagesTests(ChannelTestCase):
    def test_waiting_message_goes_back_to_its_channel(self):
        @enforce_ordering
        def consumer(message):
            message.reply_channel.send({"text": str(message["order"])})

        client = WSClient()
        with apply_routes([route("websocket.receive", consumer)]):
            client.send_and_consume("websocket.receive", {"order": 1, "text": "early"})
        assert client.receive() is None  # order 0 has not run: order 1 waits
        assert self.get_next_message("websocket.receive") is None

        message = Message({"reply_channel": client.reply_channel, "order": 1},
                          "websocket.receive", channel_layers["default"])
        requeue_messages(message)
        released = self.get_next_message("websocket.receive", require=True)
        assert released["order"] == 1 and released["text"] == "early"
        assert "original_channel" not in released.content

    def test_without_reply_channel_is_a_clear_error(self):
        message = Message({"order": 1}, "websocket.receive", channel_layers["default"])
        with pytest.raises(ValueError, match="reply_channel"):
            requeue_messages(message)


class OnlyExampleOrigin(BaseOriginValidator):
    """Written against Channels 1.1: ``get_header`` gives a list, missing is ``KeyError``."""

    def get_origin(self, message):
        try:
            return self.get_header(message, b"origin")[0].decode("ascii")
        except KeyError:
            raise DenyConnection() from None

    def validate_origin(self, message, origin):
        return origin == "https://example.com"


class OriginValidatorSubclassTests(ChannelTestCase):
    def connect(self, headers):
        consumer = OnlyExampleOrigin(lambda message: "ran")
        return consumer(Message({"reply_channel": "r", "headers": headers},
                                "websocket.connect", channel_layers["default"]))

    def test_channels_1_subclass_reading_get_header_works(self):
        assert self.connect([[b"origin", b"https://example.com"]]) == "ran"
        with pytest.raises(DenyConnection):
            self.connect([[b"origin", b"https://evil.example"]])
        with pytest.raises(DenyConnection):
            self.connect([])

    def test_get_header_shape(self):
        message = Message({"headers": [[b"Origin", b"https://a"], [b"origin", b"https://b"]]},
                          "websocket.connect", channel_layers["default"])
        assert BaseOriginValidator.get_header(message, b"origin") == [b"https://a"]
        with pytest.raises(KeyError):
            BaseOriginValidator.get_header(message, b"host")


def runserver_command(addr: str):
    from channels.management.commands.runserver import Command

    command = Command()
    command.stdout = OutputWrapper(io.StringIO())
    command.addr, command.port, command._raw_ipv6 = addr, "8000", False
    command.channel_layer = "default (test)"
    return command


def output_lines(command) -> list[str]:
    return [line for line in command.stdout._out.getvalue().splitlines() if line]


def test_runserver_banner_fallback_matches_djangos_banner():
    """Django versions without ``on_bind`` get the same banner words (after the date)."""
    ours, djangos = runserver_command("127.0.0.1"), runserver_command("127.0.0.1")
    ours._print_django_banner(8123)
    djangos.on_bind(8123)
    # Line 1 is the date; Django 5 adds a production warning after the four banner lines.
    assert output_lines(ours)[1:4] == output_lines(djangos)[1:4]
    assert "Starting development server at http://127.0.0.1:8123/" in output_lines(ours)


def test_runserver_prints_the_banner_itself_where_django_has_no_on_bind(monkeypatch):
    from django.core.management.commands.runserver import Command as DjangoRunserver

    monkeypatch.delattr(DjangoRunserver, "on_bind")
    command = runserver_command("0")
    command._server_ready([("0.0.0.0", 8123)])
    lines = output_lines(command)
    assert "Starting development server at http://0.0.0.0:8123/" in lines
    assert "WebSocket URL: ws://0.0.0.0:8123/" in lines


def test_runserver_websocket_url_shows_all_interfaces_address():
    command = runserver_command("0")
    command._server_ready([("0.0.0.0", 8123)])
    assert "WebSocket URL: ws://0.0.0.0:8123/" in output_lines(command)
    assert "Channel layer default (test)" in output_lines(command)


def test_live_server_children_accept_the_live_host():
    from channels.test import ChannelLiveServerTestCase
    from channels.test.liveserver import ALLOWED_HOST_ENV

    class LiveCase(ChannelLiveServerTestCase):
        host = "live.example"
        share_test_databases = False

        def runTest(self):  # noqa: N802 - unittest's name
            pass

    env = LiveCase()._child_environment()
    assert env[ALLOWED_HOST_ENV] == "live.example"
    script = ("from channels.test.liveserver import _setup_django; _setup_django(); "
              "from django.conf import settings; print(settings.ALLOWED_HOSTS)")
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "'live.example'" in result.stdout
    assert "'example.com'" in result.stdout  # the project's own hosts are kept


class ClientDenyConnectionTests(ChannelTestCase):
    """Channels 1.1's test client let ``DenyConnection`` reach the test."""

    def test_deny_connection_reaches_the_test_and_the_refusal_is_sent(self):
        def refuse(message):
            raise DenyConnection()

        client = WSClient()
        with apply_routes([route("websocket.connect", refuse)]):
            with self.assertRaises(DenyConnection):
                client.send_and_consume("websocket.connect")
        assert client.receive() == {"close": True}

    def test_deny_connection_from_a_plain_client(self):
        def refuse(message):
            raise DenyConnection()

        client = Client()
        with apply_routes([route("websocket.connect", refuse)]):
            with self.assertRaises(DenyConnection):
                client.send_and_consume("websocket.connect", {"path": "/"})


class PathRoute:
    """A hand-written routing entry, as Channels 1.1 allowed: ``match`` + ``channel_names``."""

    def match(self, message):
        if message.channel.name == "websocket.receive" and message["path"] == "/custom/":
            return recorder, {"seen_path": message["path"]}
        return None

    def channel_names(self):
        return ["websocket.receive"]  # a list: 1.1 only needed an iterable


class UpperRoute(route):
    """A ``route`` subclass overriding ``match``: it must still be asked."""

    def match(self, message):
        result = super().match(message)
        return None if result is None else (result[0], {"upper": message["text"].upper()})


class CustomRoutingEntryTests(ChannelTestCase):
    def message(self, **content):
        return Message(content, "websocket.receive", channel_layers["default"])

    def test_custom_entry_object_is_routed(self):
        from channels import include

        router = Router([include([PathRoute()], path=r"^/prefix")])
        assert router.channels == {"websocket.receive"}
        # The include's prefix is cut off in the message the custom entry sees.
        assert router.match(self.message(path="/prefix/custom/")) == (
            recorder, {"seen_path": "/custom/"})
        assert router.match(self.message(path="/custom/")) is None

    def test_route_subclass_overriding_match_is_used(self):
        router = Router([UpperRoute("websocket.receive", recorder)])
        assert router.match(self.message(text="hi")) == (recorder, {"upper": "HI"})

    def test_other_objects_are_still_refused(self):
        with pytest.raises(ValueError, match="route"):
            Router([object()])
