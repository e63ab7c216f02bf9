"""``requeue_messages``: a message ``enforce_ordering`` held back goes back to its channel."""

from __future__ import annotations

import pytest

from channels import route
from channels.asgi import channel_layers
from channels.message import Message
from channels.sessions import enforce_ordering, requeue_messages
from channels.test import ChannelTestCase, WSClient, apply_routes


class RequeueMessagesTests(ChannelTestCase):
    def test_waiting_message_goes_back_to_its_channel(self):
        @enforce_ordering
        def consumer(message):
            message.reply_channel.send({"text": str(message["order"])})

        client = WSClient()
        with apply_routes([route("websocket.receive", consumer)]):
            client.send_and_consume("websocket.receive", {"order": 1, "text": "early"})
        assert client.receive() is None  # order 0 has not run: order 1 waits
        assert self.get_next_message("websocket.receive") is None

        message = Message({"reply_channel": client.reply_channel, "order": 1},
                          "websocket.receive", channel_layers["default"])
        requeue_messages(message)
        released = self.get_next_message("websocket.receive", require=True)
        assert released["order"] == 1 and released["text"] == "early"
        assert "original_channel" not in released.content

    def test_without_reply_channel_is_a_clear_error(self):
        message = Message({"order": 1}, "websocket.receive", channel_layers["default"])
        with pytest.raises(ValueError, match="reply_channel"):
            requeue_messages(message)
