"""Consumers the JavaScript client tests talk to: a JSON echo, a verbatim text echo (so a test
can make the server send any frame it likes) and a demultiplexer with two streams."""

from __future__ import annotations

from typing import Any

from channels.generic.websockets import (
    JsonWebsocketConsumer,
    WebsocketConsumer,
    WebsocketDemultiplexer,
)


class JsonEcho(JsonWebsocketConsumer):
    def receive(self, content: Any = None, **kwargs: Any) -> None:
        self.send({"echo": content})


class TextEcho(WebsocketConsumer):
    """Sends back each text frame unchanged, so the client sees exactly what it sent."""

    def receive(self, text: str | None = None, bytes: bytes | None = None, **kwargs: Any) -> None:
        if text is not None:
            self.send(text=text)


class StreamConsumer(JsonWebsocketConsumer):
    """Greets on connect and answers each payload on its own stream, naming itself, so a test
    sees which server-side consumer a multiplexed frame reached."""

    stream_name = ""

    def connect(self, message: Any, **kwargs: Any) -> None:
        kwargs["multiplexer"].send({"hello": self.stream_name})

    def receive(self, content: Any = None, **kwargs: Any) -> None:
        kwargs["multiplexer"].send({"consumer": self.stream_name, "got": content})


class AlphaConsumer(StreamConsumer):
    stream_name = "alpha"


class BetaConsumer(StreamConsumer):
    stream_name = "beta"


class Streams(WebsocketDemultiplexer):
    consumers = {"alpha": AlphaConsumer, "beta": BetaConsumer}
