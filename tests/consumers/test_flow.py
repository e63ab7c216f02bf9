"""The whole story of issue 5 under ChannelTestCase: log in over HTTP, open a WebSocket with
the session cookie, chat in a group, leave; a cross-origin socket is refused."""

from __future__ import annotations

from http.cookies import SimpleCookie
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import override_settings

from channels.exceptions import DenyConnection
from channels.test import ChannelTestCase, Client, WSClient, apply_routes
from tests.consumers import chat


@override_settings(ROOT_URLCONF="tests.consumers.chat",
                   PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
@apply_routes(chat.channel_routing)
class ChatFlowTests(ChannelTestCase):
    def setUp(self):
        User.objects.create_user("alice", password="wonderland")
        User.objects.create_user("bob", password="builder")

    def http_login(self, username: str, password: str) -> str:
        """POST the login form through the channel layer (http.request → Django view) and
        return the session cookie the response sets."""
        client = Client()
        body = urlencode({"username": username, "password": password}).encode()
        client.send_and_consume("http.request", {
            "http_version": "1.1", "method": "POST", "scheme": "http", "path": "/login/",
            "query_string": b"", "root_path": "", "body": body, "client": ["127.0.0.1", 5000],
            "server": ["testserver", 80],
            "headers": [[b"host", b"testserver"],
                        [b"content-type", b"application/x-www-form-urlencoded"],
                        [b"content-length", str(len(body)).encode()]],
        })
        response = client.receive()
        assert response["status"] == 200, response
        cookies = SimpleCookie()
        for name, value in response["headers"]:
            if name.lower() == b"set-cookie":
                cookies.load(value.decode("latin-1").strip())
        return cookies[settings.SESSION_COOKIE_NAME].value

    def open_socket(self, session_key: str | None, origin: str = "http://testserver",
                    room: str = "lobby") -> WSClient:
        socket = WSClient(ordered=True, path=f"/chat/{room}/", headers={"origin": origin})
        if session_key is not None:
            socket.set_cookie(settings.SESSION_COOKIE_NAME, session_key)
        return socket

    def test_logged_in_user_chats_in_a_group_and_leaves_it(self):
        alice = self.open_socket(self.http_login("alice", "wonderland"))
        bob = self.open_socket(self.http_login("bob", "builder"))
        alice.send_and_consume("websocket.connect")
        assert alice.receive() == {"hello": "alice", "room": "lobby"}
        bob.send_and_consume("websocket.connect")
        assert bob.receive() == {"hello": "bob", "room": "lobby"}
        members = alice.channel_layer.group_channels("chat-lobby")
        assert sorted(members) == sorted([alice.reply_channel, bob.reply_channel])

        # Frames carry no cookies: the user comes from the socket's channel session.
        alice.send_and_consume("websocket.receive", {"headers": []}, text={"text": "hi bob"})
        assert alice.receive() == {"from": "alice", "text": "hi bob"}
        assert bob.receive() == {"from": "alice", "text": "hi bob"}

        alice.send_and_consume("websocket.disconnect", {"code": 1000, "headers": []})
        assert alice.channel_layer.group_channels("chat-lobby") == [bob.reply_channel]
        assert bob.receive() == {"left": "alice"}
        assert alice.receive() is None  # left the group before the goodbye was sent

    def test_receive_taken_before_connect_still_runs_after_it(self):
        alice = self.open_socket(self.http_login("alice", "wonderland"))
        alice.send("websocket.connect")
        alice.send("websocket.receive", {"headers": []}, text={"text": "early"})
        alice.consume("websocket.receive")  # a worker got the frame first: it waits
        alice.consume("websocket.connect")
        assert alice.receive() == {"hello": "alice", "room": "lobby"}
        alice.consume("websocket.receive")
        assert alice.receive() == {"from": "alice", "text": "early"}

    def test_anonymous_socket_is_closed(self):
        socket = self.open_socket(None)
        socket.send_and_consume("websocket.connect", check_accept=False)
        assert socket.receive() == {"close": True}

    def test_a_refused_socket_leaves_the_room_without_a_goodbye(self):
        alice = self.open_socket(self.http_login("alice", "wonderland"))
        alice.send_and_consume("websocket.connect")
        assert alice.receive() == {"hello": "alice", "room": "lobby"}
        stranger = self.open_socket(None)
        stranger.send_and_consume("websocket.connect", check_accept=False)
        assert stranger.receive() == {"close": True}
        # The server answers the refusal's close with a websocket.disconnect.
        stranger.send_and_consume("websocket.disconnect", {"code": 1006, "headers": []})
        assert alice.channel_layer.group_channels("chat-lobby") == [alice.reply_channel]
        assert alice.receive() is None  # no "left" for someone who never got in

    def test_cross_origin_socket_is_refused(self):
        socket = self.open_socket(self.http_login("alice", "wonderland"),
                                  origin="http://evil.example.org")
        with pytest.raises(DenyConnection):
            socket.send_and_consume("websocket.connect", check_accept=False)
        assert socket.receive() == {"close": True}
        assert socket.channel_layer.group_channels("chat-lobby") == []

    def test_wrong_password_gets_no_session(self):
        client = Client()
        body = urlencode({"username": "alice", "password": "nope"}).encode()
        client.send_and_consume("http.request", {
            "http_version": "1.1", "method": "POST", "scheme": "http", "path": "/login/",
            "query_string": b"", "body": body, "headers": [
                [b"host", b"testserver"],
                [b"content-type", b"application/x-www-form-urlencoded"]],
        })
        response = client.receive()
        assert response["status"] == 403
        assert not any(name.lower() == b"set-cookie" for name, _ in response["headers"])
