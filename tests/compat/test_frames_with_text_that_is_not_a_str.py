"""A consumer sending ``text`` that is not a str (an ``encode_json`` built on a library that
returns bytes, a number) gets a warning, not an exception, and the frame is passed on as
Channels 1.1 did; the server then drops that frame with a log line and the socket lives on."""

from __future__ import annotations

import json
import logging

import pytest
from websockets.sync.client import connect

from channels import route_class
from channels.asgi import ChannelLayerWrapper
from channels.generic.websockets import (
    JsonWebsocketConsumer,
    WebsocketConsumer,
    WebsocketMultiplexer,
)
from channels.test import ChannelTestCase, Client, WSClient, apply_routes
from channels.worker import Worker
from tests.server.conftest import ServerProcess

WAIT = 10


class BytesJsonConsumer(JsonWebsocketConsumer):
    """Like a consumer whose encoder returns bytes (orjson.dumps does)."""

    @classmethod
    def encode_json(cls, content):
        return json.dumps(content).encode()

    def receive(self, content=None, **kwargs):
        self.send({"echo": content})


class BytesMultiplexer(WebsocketMultiplexer):
    @classmethod
    def encode_json(cls, content):
        return json.dumps(content).encode()


class ConsumerTests(ChannelTestCase):
    def test_send_passes_non_str_text_on_with_a_warning(self):
        client = WSClient()
        with self.assertLogs("channels.generic.websockets", logging.WARNING) as logs:
            with apply_routes([BytesJsonConsumer.as_route()]):
                client.send_and_consume("websocket.receive", text={"a": 1})
        assert client.receive(json=False) == b'{"echo": {"a": 1}}'
        assert "'text' is bytes, not str" in logs.output[0]

    def test_group_send_passes_it_on_too(self):
        client = Client()
        client.join_group("compat-text")
        with self.assertLogs("channels.generic.websockets", logging.WARNING):
            WebsocketConsumer.group_send("compat-text", text=42)
        assert client.receive() == {"text": 42}

    def test_the_multiplexer_passes_it_on_too(self):
        client = Client()
        client.join_group("compat-mux")
        with self.assertLogs("channels.generic.websockets", logging.WARNING) as logs:
            BytesMultiplexer.group_send("compat-mux", "stream", {"n": 1})
        assert client.receive() == {"text": b'{"stream": "stream", "payload": {"n": 1}}'}
        assert "BytesMultiplexer.encode_json" in logs.output[0]

    def test_str_text_gives_no_warning(self):
        client = Client()
        client.join_group("compat-quiet")
        with self.assertNoLogs("channels.generic.websockets", logging.WARNING):
            WebsocketConsumer.group_send("compat-quiet", text="fine")
        assert client.receive() == {"text": "fine"}


class SendsTwoFrames(WebsocketConsumer):
    def receive(self, text=None, bytes=None, **kwargs):
        self.send(text=b"bytes where text belongs")
        self.send(text="after the bad one")


@pytest.mark.django_db  # the worker's request signals close database connections
def test_the_server_drops_the_bad_frame_with_a_log_line_and_keeps_the_socket(
        redis_url, unique_prefix):
    from channels.layers.redis import RedisChannelLayer

    server = ServerProcess([], {"ECHO_BACKEND": "redis", "ECHO_REDIS_URL": redis_url,
                                "ECHO_PREFIX": unique_prefix}).start()
    layer = RedisChannelLayer(hosts=[redis_url], prefix=unique_prefix)
    try:
        wrapper = ChannelLayerWrapper(layer, "default", [route_class(SendsTwoFrames)])
        with connect(f"{server.ws_url}/ws/info", open_timeout=WAIT) as websocket:
            reply_channel = json.loads(websocket.recv(timeout=WAIT))["reply_channel"]
            # What a worker does with a frame from that socket: the consumer's two sends go
            # through the layer to the live server.
            Worker(wrapper, signal_handlers=False).handle("websocket.receive", {
                "reply_channel": reply_channel, "path": "/ws/info", "text": "go", "order": 1})
            assert websocket.recv(timeout=WAIT) == "after the bad one"
            server.wait_for_output(r"Ignored a websocket\.send message: 'text' must be str")
            websocket.send("still open")
            assert websocket.recv(timeout=WAIT) == "still open"
    finally:
        server.stop()
        layer.flush()
        layer.close()
