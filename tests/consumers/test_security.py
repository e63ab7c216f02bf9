"""Origin checks for WebSocket connects."""

from __future__ import annotations

import pytest
from django.test import override_settings

from channels import route
from channels.exceptions import DenyConnection
from channels.generic.websockets import WebsocketConsumer
from channels.security.websockets import (
    AllowedHostsOnlyOriginValidator,
    BaseOriginValidator,
    allowed_hosts_only,
    origin_host,
)
from channels.test import ChannelTestCase, WSClient, apply_routes


@allowed_hosts_only
def accept(message):
    message.reply_channel.send({"accept": True})


def _connect(origin: str | bytes | None):
    client = WSClient()
    if origin is not None:
        client.set_header("origin", origin)
    with apply_routes([route("websocket.connect", accept)]):
        try:
            client.send_and_consume("websocket.connect", check_accept=False)
        except DenyConnection:
            pass  # the refusal is also in the reply, checked by the callers
    return client.receive()


class OriginTests(ChannelTestCase):
    def test_same_site_origin_is_accepted(self):
        assert _connect("http://testserver") == {"accept": True}

    def test_origin_port_is_ignored(self):
        assert _connect("https://example.com:8443") == {"accept": True}

    def test_wildcard_subdomain_is_accepted(self):
        assert _connect("http://chat.allowed.example") == {"accept": True}
        assert _connect("http://allowed.example") == {"accept": True}

    def test_cross_site_origin_is_refused(self):
        assert _connect("http://evil.example.org") == {"close": True}

    def test_lookalike_suffix_is_refused(self):
        assert _connect("http://notallowed.example") == {"close": True}

    def test_missing_null_and_malformed_origins_are_refused(self):
        assert _connect(None) == {"close": True}
        assert _connect("null") == {"close": True}
        assert _connect("example.com") == {"close": True}
        assert _connect(b"http://t\xe9stserver") == {"close": True}
        assert _connect("http://user@testserver") == {"close": True}

    @override_settings(DEBUG=True, ALLOWED_HOSTS=[])
    def test_debug_with_no_allowed_hosts_allows_localhost_only(self):
        assert _connect("http://localhost:8000") == {"accept": True}
        assert _connect("http://127.0.0.1:3000") == {"accept": True}
        assert _connect("http://[::1]:3000") == {"accept": True}
        assert _connect("http://example.com") == {"close": True}

    @override_settings(ALLOWED_HOSTS=["*"])
    def test_star_allows_any_host(self):
        assert _connect("http://anything.example") == {"accept": True}

    def test_validator_decorates_class_consumer_methods(self):
        class Guarded(WebsocketConsumer):
            @allowed_hosts_only
            def connect(self, message, **kwargs):
                self.accept()

        for origin, expected in (("http://testserver", {"accept": True}),
                                 ("http://evil.example.org", {"close": True})):
            client = WSClient(headers={"origin": origin})
            with apply_routes([Guarded.as_route()]):
                try:
                    client.send_and_consume("websocket.connect", check_accept=False)
                except DenyConnection:
                    assert expected == {"close": True}
            assert client.receive() == expected

    def test_validator_raises_deny_connection(self):
        class OnlyExampleDotCom(BaseOriginValidator):
            def validate_origin(self, message, origin):
                return origin == "http://example.com"

        from channels.asgi import channel_layers
        from channels.message import Message

        guarded = OnlyExampleDotCom(lambda message: "ran")
        good = Message({"reply_channel": "r", "headers": [[b"origin", b"http://example.com"]]},
                       "websocket.connect", channel_layers["default"])
        bad = Message({"reply_channel": "r", "headers": [[b"Origin", b"http://x.com"]]},
                      "websocket.connect", channel_layers["default"])
        assert guarded(good) == "ran"
        with pytest.raises(DenyConnection):
            guarded(bad)

    def test_origin_host_parsing(self):
        assert origin_host("HTTP://Example.COM:80") == "example.com"
        assert origin_host("https://[::1]:8443") == "[::1]"
        assert origin_host("null") is None
        assert AllowedHostsOnlyOriginValidator is allowed_hosts_only
