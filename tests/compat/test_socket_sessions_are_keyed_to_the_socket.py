"""A socket's channel session is keyed to its reply channel before it is stored, so a view can
change it and the next consumer on that socket sees the change; it is never silently re-keyed."""

from __future__ import annotations

import pytest
from django.test import override_settings

from channels import route
from channels.sessions import channel_session, channel_session_key, session_for_reply_channel
from channels.test import ChannelTestCase, Client, apply_routes

LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


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
