"""``channels.test`` as test suites written for Channels 1.1 use it: ``WSClient.receive()``
returns the frame's text, the query string travels on the connect only, and the 1.1 names
(``ChannelTestCaseMixin``, ``WSClient._get_content``, ``WSClient.headers``) still work."""

from __future__ import annotations

from django.test import TestCase

from channels import route
from channels.asgi import channel_layers
from channels.layers.inmemory import InMemoryChannelLayer
from channels.test import ChannelTestCase, WSClient, apply_routes
from channels.test.base import ChannelTestCaseMixin, ChannelTestMixin


def reply_with(content):
    def consumer(message):
        message.reply_channel.send(content)

    return consumer


class ReceiveTests(ChannelTestCase):
    def _reply(self, content, json=True):
        client = WSClient()
        with apply_routes([route("websocket.receive", reply_with(content))]):
            client.send_and_consume("websocket.receive", text="x")
        return client.receive(json=json)

    def test_json_text_is_decoded(self):
        assert self._reply({"text": '{"n": [1, 2]}'}) == {"n": [1, 2]}

    def test_text_as_is_with_json_false(self):
        assert self._reply({"text": '{"n": 1}'}, json=False) == '{"n": 1}'

    def test_text_that_is_not_a_str_is_still_the_text_not_the_whole_message(self):
        assert self._reply({"text": 42}) == 42
        assert self._reply({"text": 42, "close": True}, json=False) == 42

    def test_the_whole_content_only_without_a_text_key(self):
        assert self._reply({"bytes": b"raw"}) == {"bytes": b"raw"}
        assert self._reply({"close": 4000}) == {"close": 4000}

    def test_nothing_is_none(self):
        assert WSClient().receive() is None


class QueryStringTests(ChannelTestCase):
    def test_query_string_goes_on_the_connect_only(self):
        client = WSClient()
        for channel in ("websocket.connect", "websocket.receive", "websocket.disconnect"):
            client.send(channel, path="/chat/?room=1&x=%20")
        connect = self.get_next_message("websocket.connect").content
        receive = self.get_next_message("websocket.receive").content
        disconnect = self.get_next_message("websocket.disconnect").content
        assert connect["path"] == "/chat/" and connect["query_string"] == b"room=1&x=%20"
        for later in (receive, disconnect):
            assert later["path"] == "/chat/" and "query_string" not in later

    def test_a_connect_without_query_carries_an_empty_one_as_servers_send_it(self):
        WSClient(path="/chat/").send("websocket.connect")
        connect = self.get_next_message("websocket.connect").content
        assert connect["path"] == "/chat/" and connect["query_string"] == b""


class HeaderTests(ChannelTestCase):
    def test_headers_keep_the_name_given_and_always_have_a_cookie(self):
        client = WSClient()
        client.set_header("Origin", "http://testserver")
        headers = client.headers
        assert headers["Origin"] == "http://testserver"
        assert isinstance(headers["cookie"], bytes)

    def test_messages_carry_lower_case_byte_pairs_as_servers_send_them(self):
        client = WSClient()
        client.set_header("Origin", "http://testserver")
        client.send("websocket.connect")
        headers = dict(self.get_next_message("websocket.connect")["headers"])
        assert headers[b"origin"] == b"http://testserver"


class ContentBuilderTests(ChannelTestCase):
    def test_a_subclass_overriding_get_content_shapes_every_message(self):
        class TaggingClient(WSClient):
            def _get_content(self, content=None, text=None, path="/"):
                content = super()._get_content(content, text, path)
                content["tag"] = "mine"
                return content

        TaggingClient().send("websocket.receive", text={"a": 1}, path="/p/")
        message = self.get_next_message("websocket.receive").content
        assert message["tag"] == "mine" and message["text"] == '{"a": 1}'
        assert message["path"] == "/p/"


class OldMixinNameTests(ChannelTestCaseMixin, TestCase):
    """A suite that still subclasses the 1.1 mixin name gets the fresh in-memory layer."""

    def test_the_old_name_is_the_mixin(self):
        assert ChannelTestCaseMixin is ChannelTestMixin
        assert isinstance(channel_layers["default"].channel_layer, InMemoryChannelLayer)
        channel_layers["default"].send("compat.mixin", {"n": 1})
        assert self.get_next_message("compat.mixin", require=True)["n"] == 1
