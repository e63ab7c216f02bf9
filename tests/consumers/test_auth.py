"""message.user from channel and HTTP sessions; transfer_user."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.sessions.backends.db import SessionStore
from django.test import override_settings

from channels import route
from channels.auth import (
    channel_and_http_session_user_from_http,
    channel_session_user,
    channel_session_user_from_http,
    http_session_user,
    transfer_user,
)
from channels.test import ChannelTestCase, Client, WSClient, apply_routes


@override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
class AuthTests(ChannelTestCase):
    def setUp(self):
        self.user = User.objects.create_user("alice", password="wonderland")

    def _record_user(self, decorator, seen):
        @decorator
        def consumer(message):
            seen.append(message.user)

        return consumer

    def test_anonymous_without_login(self):
        seen = []
        consumer = self._record_user(channel_session_user, seen)
        with apply_routes([route("websocket.receive", consumer)]):
            Client().send_and_consume("websocket.receive", {"text": "x"})
        assert isinstance(seen[0], AnonymousUser)

    def test_http_session_user_without_cookie_is_anonymous(self):
        seen = []
        consumer = self._record_user(http_session_user, seen)
        with apply_routes([route("websocket.connect", consumer)]):
            Client().send_and_consume("websocket.connect", {"path": "/", "headers": []})
        assert isinstance(seen[0], AnonymousUser)

    def test_http_session_user_from_logged_in_cookie(self):
        seen = []
        client = WSClient()
        assert client.login(username="alice", password="wonderland")
        consumer = self._record_user(http_session_user, seen)
        with apply_routes([route("websocket.connect", consumer)]):
            client.send_and_consume("websocket.connect", check_accept=False)
        assert seen[0] == self.user

    def test_login_with_wrong_password_fails(self):
        assert WSClient().login(username="alice", password="nope") is False

    def test_user_from_http_is_kept_for_later_messages(self):
        seen = []
        client = WSClient()
        client.force_login(self.user)
        connect = self._record_user(channel_session_user_from_http, seen)
        receive = self._record_user(channel_session_user, seen)
        with apply_routes([route("websocket.connect", connect),
                           route("websocket.receive", receive)]):
            client.send_and_consume("websocket.connect", check_accept=False)
            # No cookie on later messages: the user comes from the channel session.
            client.send_and_consume("websocket.receive", {"text": "x", "headers": []})
        assert seen == [self.user, self.user]

    def test_channel_and_http_session_user_from_http(self):
        seen = []
        client = WSClient()
        client.force_login(self.user)

        @channel_and_http_session_user_from_http
        def connect(message):
            seen.append((message.user, message.http_session.session_key))

        with apply_routes([route("websocket.connect", connect)]):
            client.send_and_consume("websocket.connect", check_accept=False)
        assert seen == [(self.user, client.session.session_key)]

    def test_transfer_user_copies_a_complete_login_only(self):
        source = SessionStore()
        source[SESSION_KEY] = "1"
        source[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0] if hasattr(
            settings, "AUTHENTICATION_BACKENDS") else "x"
        target = SessionStore()
        transfer_user(source, target)
        assert SESSION_KEY not in target  # no hash: half a login is not copied
        source[HASH_SESSION_KEY] = "abc"
        transfer_user(source, target)
        assert target[SESSION_KEY] == "1" and target[HASH_SESSION_KEY] == "abc"
