"""The test clients let a consumer's ``DenyConnection`` reach the test, as in Channels 1.1, and
the refusal is still sent to the socket."""

from __future__ import annotations

from channels import route
from channels.exceptions import DenyConnection
from channels.test import ChannelTestCase, Client, WSClient, apply_routes


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
