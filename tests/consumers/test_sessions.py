"""channel_session, http_session, channel_and_http_session."""

from __future__ import annotations

import hashlib

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DbSessionStore
from django.test import override_settings

from channels import route
from channels.message import Message
from channels.sessions import (
    channel_and_http_session,
    channel_session,
    channel_session_key,
    http_session,
    session_for_reply_channel,
)
from channels.test import ChannelTestCase, Client, WSClient, apply_routes


class ChannelSessionTests(ChannelTestCase):
    def test_session_key_is_derived_from_the_reply_channel(self):
        expected = "chn" + hashlib.sha1(b"websocket.send.ab!cd").hexdigest()[:29]
        assert channel_session_key("websocket.send.ab!cd") == expected
        assert len(expected) == 32

    def test_session_persists_across_messages_of_one_socket(self):
        @channel_session
        def count(message):
            message.channel_session["seen"] = message.channel_session.get("seen", 0) + 1
            message.reply_channel.send({"text": str(message.channel_session["seen"])})

        client = Client()
        other = Client()
        with apply_routes([route("websocket.receive", count)]):
            client.send_and_consume("websocket.receive", {"text": "a"})
            client.send_and_consume("websocket.receive", {"text": "b"})
            other.send_and_consume("websocket.receive", {"text": "c"})
        assert client.receive() == {"text": "1"}
        assert client.receive() == {"text": "2"}
        assert other.receive() == {"text": "1"}
        stored = session_for_reply_channel(client.reply_channel)
        assert stored.session_key == channel_session_key(client.reply_channel)
        assert stored["seen"] == 2

    def test_session_is_created_on_first_use_even_if_unmodified(self):
        @channel_session
        def touch(message):
            assert message.channel_session.session_key == channel_session_key(
                message.reply_channel.name)

        client = Client()
        assert not DbSessionStore().exists(channel_session_key(client.reply_channel))
        with apply_routes([route("websocket.connect", touch)]):
            client.send_and_consume("websocket.connect")
        assert DbSessionStore().exists(channel_session_key(client.reply_channel))

    def test_session_not_saved_when_consumer_fails(self):
        @channel_session
        def fail(message):
            message.channel_session["x"] = 1
            raise RuntimeError("boom")

        client = Client()
        with apply_routes([route("websocket.receive", fail)]):
            with pytest.raises(RuntimeError):
                client.send_and_consume("websocket.receive", {"text": "a"})
        assert "x" not in session_for_reply_channel(client.reply_channel)

    def test_decorator_works_on_methods(self):
        class Holder:
            @channel_session
            def handle(self, message):
                message.channel_session["method"] = True

        client = Client()
        with apply_routes([route("websocket.receive", Holder().handle)]):
            client.send_and_consume("websocket.receive", {"text": "a"})
        assert session_for_reply_channel(client.reply_channel)["method"] is True

    def test_missing_message_is_a_clear_error(self):
        @channel_session
        def consumer(anything):
            pass

        with pytest.raises(ValueError, match="without a Message"):
            consumer("not a message")

    def test_message_without_reply_channel_is_refused(self):
        @channel_session
        def consumer(message):
            pass

        from channels.asgi import channel_layers

        message = Message({"text": "x"}, "websocket.receive", channel_layers["default"])
        with pytest.raises(ValueError, match="reply_channel"):
            consumer(message)

    @override_settings(
        CHANNEL_SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies")
    def test_signed_cookie_engine_is_refused(self):
        with pytest.raises(ValueError, match="cookie"):
            session_for_reply_channel("websocket.send.x!y")

    @override_settings(
        CHANNEL_SESSION_ENGINE="django.contrib.sessions.backends.cache",
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
    )
    def test_cache_engine_keeps_the_session(self):
        @channel_session
        def consumer(message):
            message.channel_session["n"] = message.channel_session.get("n", 0) + 1

        client = Client()
        with apply_routes([route("websocket.receive", consumer)]):
            client.send_and_consume("websocket.receive", {"text": "a"})
            client.send_and_consume("websocket.receive", {"text": "a"})
        session = session_for_reply_channel(client.reply_channel)
        assert type(session).__module__ == "django.contrib.sessions.backends.cache"
        assert session["n"] == 2

    def test_concurrent_creation_uses_the_winners_row(self):
        # Another worker created the session between our load and our create.
        reply = "websocket.send.race!abc"
        from channels.sessions import _create_channel_session, _load_channel_session

        loaded, exists = _load_channel_session(reply)
        assert not exists
        winner = session_for_reply_channel(reply)

        winner = _create_channel_session(reply, winner)
        winner["who"] = "winner"
        winner.save()
        mine = _create_channel_session(reply, loaded)
        assert mine["who"] == "winner"


class HttpSessionTests(ChannelTestCase):
    def _browser_session(self, **data):
        session = DbSessionStore()
        for key, value in data.items():
            session[key] = value
        session.save()
        return session

    def test_session_from_cookie(self):
        browser = self._browser_session(colour="blue")
        seen = {}

        @http_session
        def connect(message):
            seen["colour"] = message.http_session.get("colour")

        client = WSClient()
        client.set_cookie(settings.SESSION_COOKIE_NAME, browser.session_key)
        with apply_routes([route("websocket.connect", connect)]):
            client.send_and_consume("websocket.connect", check_accept=False)
        assert seen == {"colour": "blue"}

    def test_session_from_query_string(self):
        browser = self._browser_session(colour="red")
        seen = {}

        @http_session
        def connect(message):
            seen["colour"] = message.http_session.get("colour")

        client = WSClient()
        with apply_routes([route("websocket.connect", connect)]):
            client.send_and_consume("websocket.connect",
                                    path=f"/?session_key={browser.session_key}",
                                    check_accept=False)
        assert seen == {"colour": "red"}

    def test_no_cookie_means_none_and_nothing_created(self):
        seen = {}

        @http_session
        def connect(message):
            seen["session"] = message.http_session

        client = Client()
        with apply_routes([route("websocket.connect", connect)]):
            client.send_and_consume("websocket.connect", {"path": "/", "headers": []})
        assert seen == {"session": None}

    def test_modified_http_session_is_saved(self):
        browser = self._browser_session()

        @http_session
        def connect(message):
            message.http_session["visited"] = True

        client = WSClient()
        client.set_cookie(settings.SESSION_COOKIE_NAME, browser.session_key)
        with apply_routes([route("websocket.connect", connect)]):
            client.send_and_consume("websocket.connect", check_accept=False)
        assert DbSessionStore(session_key=browser.session_key)["visited"] is True

    def test_non_utf8_query_string_is_a_clear_error(self):
        @http_session
        def connect(message):
            pass

        client = Client()
        with apply_routes([route("websocket.connect", connect)]):
            with pytest.raises(ValueError, match="query_string"):
                client.send_and_consume("websocket.connect",
                                        {"path": "/", "query_string": b"\xff\xfe", "headers": []})

    def test_channel_and_http_session_rehydrates_on_later_messages(self):
        browser = self._browser_session(colour="green")
        seen = []

        @channel_and_http_session
        def consumer(message):
            seen.append(message.http_session and message.http_session.get("colour"))

        client = WSClient()
        client.set_cookie(settings.SESSION_COOKIE_NAME, browser.session_key)
        with apply_routes([route("websocket.connect", consumer),
                           route("websocket.receive", consumer)]):
            client.send_and_consume("websocket.connect", check_accept=False)
            # Later frames carry no cookies at all.
            client.send_and_consume("websocket.receive", {"text": "x", "headers": []})
        assert seen == ["green", "green"]
