"""An origin validator subclass written against Channels 1.1 (``get_header`` returns a list, a
missing header raises ``KeyError``) runs unchanged."""

from __future__ import annotations

import pytest

from channels.asgi import channel_layers
from channels.exceptions import DenyConnection
from channels.message import Message
from channels.security.websockets import BaseOriginValidator
from channels.test import ChannelTestCase


class OnlyExampleOrigin(BaseOriginValidator):
    """Written against Channels 1.1: ``get_header`` gives a list, missing is ``KeyError``."""

    def get_origin(self, message):
        try:
            return self.get_header(message, b"origin")[0].decode("ascii")
        except KeyError:
            raise DenyConnection() from None

    def validate_origin(self, message, origin):
        return origin == "https://example.com"


class OriginValidatorSubclassTests(ChannelTestCase):
    def connect(self, headers):
        consumer = OnlyExampleOrigin(lambda message: "ran")
        return consumer(Message({"reply_channel": "r", "headers": headers},
                                "websocket.connect", channel_layers["default"]))

    def test_channels_1_subclass_reading_get_header_works(self):
        assert self.connect([[b"origin", b"https://example.com"]]) == "ran"
        with pytest.raises(DenyConnection):
            self.connect([[b"origin", b"https://evil.example"]])
        with pytest.raises(DenyConnection):
            self.connect([])

    def test_get_header_shape(self):
        message = Message({"headers": [[b"Origin", b"https://a"], [b"origin", b"https://b"]]},
                          "websocket.connect", channel_layers["default"])
        assert BaseOriginValidator.get_header(message, b"origin") == [b"https://a"]
        with pytest.raises(KeyError):
            BaseOriginValidator.get_header(message, b"host")
