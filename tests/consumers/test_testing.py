"""The test framework itself: layer isolation, clients, apply_routes, deprecated names."""

from __future__ import annotations

import importlib
import sys
import warnings

import pytest
from django.conf import settings
from django.test import override_settings

from channels import route
from channels.asgi import channel_layers
from channels.layers.inmemory import InMemoryChannelLayer
from channels.test import (
    ChannelTestCase,
    Client,
    TransactionChannelTestCase,
    WSClient,
    apply_routes,
)


def echo(message):
    message.reply_channel.send({"text": message.get("text", "")})


def shout(message):
    message.reply_channel.send({"text": message.get("text", "").upper()})


class IsolationTests(ChannelTestCase):
    """Each test leaves a message behind; the other must not see it, whichever runs first."""

    def _leave_a_message(self):
        assert self.get_next_message("isolation.test") is None
        channel_layers["default"].send("isolation.test", {"left": "behind"})
        assert self.get_next_message("isolation.test", require=True)["left"] == "behind"
        channel_layers["default"].send("isolation.test", {"left": "behind"})

    def test_first(self):
        self._leave_a_message()

    def test_second(self):
        self._leave_a_message()

    def test_require_fails_the_test_when_empty(self):
        with pytest.raises(AssertionError, match="isolation.none"):
            self.get_next_message("isolation.none", require=True)


class TransactionIsolationTests(TransactionChannelTestCase):
    """The transaction flavour: the same fresh layer per test, and consumers' database writes
    are really committed (no test-wide transaction around them)."""

    def _leave_a_message(self):
        assert self.get_next_message("isolation.tx") is None
        channel_layers["default"].send("isolation.tx", {"left": "behind"})

    def test_first(self):
        self._leave_a_message()

    def test_second(self):
        self._leave_a_message()

    def test_a_consumer_commits_its_writes(self):
        from django.contrib.auth.models import User
        from django.db import connection

        def sign_up(message):
            User.objects.create_user(message["username"])

        client = Client()
        with apply_routes([route("signup", sign_up)]):
            client.send_and_consume("signup", {"username": "dora"})
        assert connection.in_atomic_block is False  # nothing wraps the test in a transaction
        assert User.objects.filter(username="dora").exists()


@override_settings(CHANNEL_LAYERS={"default": {
    "BACKEND": "channels.layers.redis.RedisChannelLayer",
    "CONFIG": {"hosts": ["redis://127.0.0.1:1"]},  # nothing listens there
    "ROUTING": "tests.testapp.routing.channel_routing",
}})
class ConfiguredLayerIsReplacedTests(ChannelTestCase):
    def test_tests_get_an_in_memory_layer_whatever_is_configured(self):
        assert isinstance(channel_layers["default"].channel_layer, InMemoryChannelLayer)
        channel_layers["default"].send("works.here", {"a": 1})
        assert self.get_next_message("works.here")["a"] == 1


class ClientTests(ChannelTestCase):
    def test_consume_without_message_or_route(self):
        client = Client()
        with pytest.raises(AssertionError, match="No message"):
            client.consume("nothing.here")
        assert client.consume("nothing.here", fail_on_none=False) is None
        client.send("unrouted.channel", {"a": 1})
        with pytest.raises(AssertionError, match="consumer"):
            client.consume("unrouted.channel")

    def test_consumer_exceptions_reach_the_test_and_drop_queued_sends(self):
        def broken(message):
            message.reply_channel.send({"text": "never"})
            raise KeyError("bug")

        client = Client()
        with apply_routes([route("test.broken", broken)]):
            with pytest.raises(KeyError):
                client.send_and_consume("test.broken")
        assert client.receive() is None

    def test_sends_are_held_until_the_consumer_returns(self):
        seen_during = []

        def consumer(message):
            message.reply_channel.send({"text": "later"})
            seen_during.append(channel_layers["default"].receive([message.reply_channel.name]))

        client = Client()
        with apply_routes([route("test.hold", consumer)]):
            client.send_and_consume("test.hold")
        assert seen_during == [(None, None)]
        assert client.receive() == {"text": "later"}

    def test_get_consumer_by_channel(self):
        with apply_routes([route("test.echo", echo)]):
            assert Client().get_consumer_by_channel("test.echo") is echo
            assert Client().get_consumer_by_channel("test.other") is None


class WSClientTests(ChannelTestCase):
    def test_path_query_headers_and_session_cookie_on_first_message_only(self):
        client = WSClient(headers={"origin": "http://testserver"})
        client.set_cookie("theme", "dark")
        client.send("websocket.connect", path="/chat/?room=1")
        client.send("websocket.receive", text="x")
        first = self.get_next_message("websocket.connect").content
        later = self.get_next_message("websocket.receive").content
        assert first["path"] == "/chat/" and first["query_string"] == b"room=1"
        headers = dict(first["headers"])
        assert headers[b"origin"] == b"http://testserver"
        cookie = headers[b"cookie"].decode()
        assert "theme=dark" in cookie
        assert f"{settings.SESSION_COOKIE_NAME}={client.session.session_key}" in cookie
        assert settings.SESSION_COOKIE_NAME not in dict(later["headers"])[b"cookie"].decode()
        assert later["text"] == "x" and "order" not in later

    def test_ordered_numbers_messages(self):
        client = WSClient(ordered=True)
        for _ in range(3):
            client.send("websocket.receive", text="x")
        orders = [self.get_next_message("websocket.receive")["order"] for _ in range(3)]
        assert orders == [0, 1, 2]
        with pytest.raises(ValueError, match="order"):
            client.send("websocket.receive", {"order": 9})

    def test_cookie_header_must_go_through_set_cookie(self):
        with pytest.raises(ValueError, match="set_cookie"):
            WSClient().set_header("Cookie", "a=b")

    def test_receive_json_text_and_raw(self):
        client = WSClient()
        with apply_routes([route("websocket.receive", echo)]):
            client.send_and_consume("websocket.receive", text={"k": "v"})
            client.send_and_consume("websocket.receive", text={"k": "v"})
        assert client.receive() == {"k": "v"}
        assert client.receive(json=False) == '{"k": "v"}'
        assert client.receive() is None

    def test_check_accept_fails_on_refusal(self):
        def refuse(message):
            message.reply_channel.send({"close": True})

        client = WSClient()
        with apply_routes([route("websocket.connect", refuse)]):
            with pytest.raises(AssertionError, match="rejected"):
                client.send_and_consume("websocket.connect")

    def test_session_values_are_seen_as_the_channel_session(self):
        from channels.sessions import channel_session

        seen = []

        @channel_session
        def consumer(message):
            seen.append(message.channel_session.get("prepared"))

        client = WSClient()
        client.session["prepared"] = "yes"
        client.session.save()
        with apply_routes([route("websocket.receive", consumer)]):
            client.send_and_consume("websocket.receive", text="x")
        assert seen == ["yes"]


class ApplyRoutesTests(ChannelTestCase):
    def test_context_manager_restores_routing(self):
        before = channel_layers["default"].routing
        with apply_routes([route("test.echo", echo)]):
            assert channel_layers["default"].router.channels == {"test.echo"}
        assert channel_layers["default"].routing is before

    def test_nested_lists_become_includes(self):
        client = Client()
        with apply_routes([[route("test.echo", echo)], [route("test.shout", shout)]]):
            client.send_and_consume("test.shout", {"text": "a"})
        assert client.receive() == {"text": "A"}

    def test_single_route(self):
        client = Client()
        with apply_routes(route("test.shout", shout)):
            client.send_and_consume("test.shout", {"text": "b"})
        assert client.receive() == {"text": "B"}

    @apply_routes([route("test.echo", echo)])
    def test_function_decorator(self):
        client = Client()
        client.send_and_consume("test.echo", {"text": "c"})
        assert client.receive() == {"text": "c"}

    def test_broken_route_fails_on_entry(self):
        with pytest.raises(ValueError):
            with apply_routes(["not a route"]):
                pass


@apply_routes([route("test.shout", shout)])
class ApplyRoutesClassDecoratorTests(ChannelTestCase):
    def test_every_test_gets_the_routes(self):
        client = Client()
        client.send_and_consume("test.shout", {"text": "d"})
        assert client.receive() == {"text": "D"}


@override_settings(CHANNEL_LAYERS={
    "default": {"BACKEND": "channels.layers.inmemory.InMemoryChannelLayer", "ROUTING": []},
    "other": {"BACKEND": "channels.layers.inmemory.InMemoryChannelLayer", "ROUTING": []},
})
class SecondAliasTests(ChannelTestCase):
    test_channel_aliases = ["default", "other"]

    def test_apply_routes_on_another_alias(self):
        client = Client(alias="other")
        with apply_routes([route("test.echo", echo)], aliases=["other"]):
            client.send_and_consume("test.echo", {"text": "e"})
            assert channel_layers["default"].router.channels == set()
        assert client.receive() == {"text": "e"}
        assert client.reply_channel.startswith("other")


@pytest.mark.parametrize("module", ["channels.tests", "channels.test.http"])
def test_deprecated_modules_warn_and_still_work(module):
    sys.modules.pop(module, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        imported = importlib.import_module(module)
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    assert imported.HttpClient is WSClient
