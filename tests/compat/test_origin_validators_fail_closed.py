"""Origin validators fail closed: whatever is wrong with the Origin header (or the headers as a
whole), the connection is refused with ``DenyConnection`` (HTTP 403 at the server), never
crashed with another exception and never let in."""

from __future__ import annotations

import logging

import pytest

from channels import route
from channels.exceptions import DenyConnection
from channels.security.websockets import BaseOriginValidator, allowed_hosts_only
from channels.test import ChannelTestCase, Client, apply_routes


@allowed_hosts_only
def accept(message):
    message.reply_channel.send({"accept": True})


MALFORMED_ORIGINS = [
    b"",
    b"   ",
    b"\xff\xfe\xfd",                       # not UTF-8
    "http://t\u00e9stserver".encode(),     # UTF-8, not ASCII
    b"http://t\xe9stserver",               # latin-1, not ASCII
    b"null",
    b"testserver",                         # no scheme
    b"//testserver",
    b"http://",
    b"http:testserver",
    b"http://testserver:99999",            # port out of range
    b"http://testserver:-1",
    b"http://testserver:abc",
    b"http://testserver:",
    b"http://[::1",                        # IPv6 garbage
    b"http://[zz::1]",
    b"http://[::1]garbage",
    b"http://::1",
    b"http://testserver\r\n",              # controls and spaces
    b"http://test\x00server",
    b"http://test server",
    b"http://testserver, http://evil.example.org",
    b"http://user@testserver",
    b"http://testserver@evil.example.org",
]


def _reply_to_connect(headers) -> dict | None:
    client = Client()
    with apply_routes([route("websocket.connect", accept)]):
        client.send("websocket.connect", {"path": "/", "headers": headers})
        with pytest.raises(DenyConnection):
            client.consume("websocket.connect")
    return client.receive()


class FailClosedTests(ChannelTestCase):
    def test_the_well_formed_origin_is_accepted(self):
        client = Client()
        with apply_routes([route("websocket.connect", accept)]):
            client.send("websocket.connect", {"path": "/",
                                              "headers": [[b"origin", b"http://testserver"]]})
            client.consume("websocket.connect")
        assert client.receive() == {"accept": True}

    def test_malformed_origin_values_are_refused(self):
        for origin in MALFORMED_ORIGINS:
            with self.subTest(origin=origin):
                assert _reply_to_connect([[b"origin", origin]]) == {"close": True}

    def test_origin_values_that_are_not_bytes_are_refused(self):
        for origin in (None, 5, ["http://testserver"], "http://t\u00e9stserver", "null"):
            with self.subTest(origin=origin):
                assert _reply_to_connect([[b"origin", origin]]) == {"close": True}

    def test_several_origin_headers_are_refused_even_if_all_are_allowed(self):
        for headers in (
            [[b"origin", b"http://testserver"], [b"origin", b"http://evil.example.org"]],
            [[b"origin", b"http://evil.example.org"], [b"Origin", b"http://testserver"]],
            [[b"origin", b"http://testserver"], [b"origin", b"http://testserver"]],
        ):
            with self.subTest(headers=headers):
                assert _reply_to_connect(headers) == {"close": True}

    def test_missing_or_malformed_header_lists_are_refused(self):
        for headers in (
            None,
            [],
            [[b"host", b"testserver"]],
            "origin: http://testserver",
            5,
            [[b"origin"]],
            [[b"origin", b"http://testserver", b"extra"]],
            [b"origin"],
            [[5, b"http://testserver"]],
            [["\u00f6rigin", b"http://testserver"]],
            {"origin": ["http://testserver", "http://evil.example.org"]},
        ):
            with self.subTest(headers=headers):
                assert _reply_to_connect(headers) == {"close": True}

    def test_a_validator_that_raises_refuses_and_logs(self):
        class Fussy(BaseOriginValidator):
            def validate_origin(self, message, origin):
                raise RuntimeError("cannot decide")

        client = Client()
        with apply_routes([route("websocket.connect", Fussy(accept))]):
            client.send("websocket.connect", {"path": "/",
                                              "headers": [[b"origin", b"http://testserver"]]})
            with self.assertLogs("channels.security", logging.ERROR) as logs:
                with pytest.raises(DenyConnection):
                    client.consume("websocket.connect")
        assert client.receive() == {"close": True}
        assert "Fussy failed on origin 'http://testserver'" in logs.output[0]

    def test_a_validator_refusing_by_itself_is_not_logged_as_a_failure(self):
        class Strict(BaseOriginValidator):
            def validate_origin(self, message, origin):
                raise DenyConnection("not today")

        client = Client()
        with apply_routes([route("websocket.connect", Strict(accept))]):
            client.send("websocket.connect", {"path": "/",
                                              "headers": [[b"origin", b"http://testserver"]]})
            with self.assertNoLogs("channels.security", logging.ERROR):
                with pytest.raises(DenyConnection, match="not today"):
                    client.consume("websocket.connect")
        assert client.receive() == {"close": True}
