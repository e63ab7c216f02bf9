"""WebSocket consumers: raw frames, JSON frames, and JSON streams multiplexed on one socket."""

from __future__ import annotations

import builtins
import json
import logging
from collections.abc import Callable
from typing import Any, ClassVar

from django.core.serializers.json import DjangoJSONEncoder

from channels.auth import channel_and_http_session_user_from_http, channel_session_user_from_http
from channels.channel import Channel, Group
from channels.exceptions import SendNotAvailableOnDemultiplexer
from channels.generic.base import BaseConsumer
from channels.message import Message
from channels.sessions import channel_and_http_session, enforce_ordering

logger = logging.getLogger("channels.generic.websockets")


def _frame_value(key: str, value: Any, expected: type | tuple[type, ...], sender: str) -> Any:
    """``value`` unchanged, with a warning when it is not of the type a frame needs.

    Channels 1.1 passed any value on, and code written for it may send e.g. the bytes an
    ``encode_json`` built on orjson returns; raising would break it. The server drops a frame
    it cannot send (with a log line of its own), so the warning says where it came from.
    """
    if not isinstance(value, expected):
        logger.warning("%s: '%s' is %s, not %s; sent as it is, but servers drop such frames",
                       sender, key, type(value).__name__,
                       "str" if key == "text" else "bytes")
    return value


class WebsocketConsumer(BaseConsumer):
    """Connect, receive, disconnect, with group membership for the socket's lifetime.

    ``connection_groups()`` are joined before ``connect`` and left before ``disconnect``;
    ``http_user`` brings the browser's login into the socket's session on connect, and
    ``message.user`` on every message; ``strict_ordering`` / ``slight_ordering`` apply
    ``enforce_ordering``.
    """

    method_mapping: ClassVar[dict[str, str]] = {
        "websocket.connect": "raw_connect",
        "websocket.receive": "raw_receive",
        "websocket.disconnect": "raw_disconnect",
    }
    http_user: bool = False
    http_user_and_session: bool = False
    strict_ordering: bool = False
    slight_ordering: bool = False
    groups: list[str] | None = None

    def get_handler(self, message: Message, **kwargs: Any) -> Callable[..., Any]:
        method = self.mapped_method(message)
        if self.http_user or self.http_user_and_session:
            # The user travels from the HTTP session into the channel session on connect and
            # is read from there afterwards, when no cookies come with the messages.
            self.channel_session_user = True
        handler = self.apply_session_decorators(method)
        if self.http_user_and_session and message.channel.name != "websocket.connect":
            handler = channel_and_http_session(handler)
        if message.channel.name == "websocket.connect":
            if self.http_user_and_session:
                handler = channel_and_http_session_user_from_http(handler)
            elif self.http_user:
                handler = channel_session_user_from_http(handler)
        # A demultiplexer already ordered this message for the socket; ordering it again per
        # stream would run order 0 once and drop it for every other stream (channels#656).
        if "multiplexer" not in kwargs:
            if self.strict_ordering:
                handler = enforce_ordering(handler, slight=False)
            elif self.slight_ordering:
                handler = enforce_ordering(handler, slight=True)
        return handler

    def dispatch(self, message: Message, **kwargs: Any) -> Any:
        self.path = message.get("path")
        return super().dispatch(message, **kwargs)

    def connection_groups(self, **kwargs: Any) -> list[str]:
        """Groups the socket belongs to while connected (URL kwargs help pick them)."""
        return list(self.groups or [])

    def _group(self, name: str) -> Group:
        return Group(name, channel_layer=self.message.channel_layer)

    def raw_connect(self, message: Message, **kwargs: Any) -> None:
        groups = self.connection_groups(**kwargs)
        for group in groups:
            self._group(group).add(message.reply_channel)
        try:
            self.connect(message, **kwargs)
        except BaseException:
            # A refused socket never gets a disconnect, so nothing else would take it out.
            for group in groups:
                self._group(group).discard(message.reply_channel)
            raise

    def connect(self, message: Message, **kwargs: Any) -> None:
        """Accepts by default; override to check the user and ``close()`` or raise
        ``DenyConnection`` to refuse (the handshake then ends in 403)."""
        if "multiplexer" not in kwargs:  # the demultiplexer accepts once for all streams
            self.accept()

    def accept(self) -> None:
        self.message.reply_channel.send({"accept": True})

    def raw_receive(self, message: Message, **kwargs: Any) -> None:
        if message.get("text") is not None:
            self.receive(text=message["text"], **kwargs)
        else:
            self.receive(bytes=message.get("bytes"), **kwargs)

    def receive(self, text: str | None = None, bytes: bytes | None = None, **kwargs: Any) -> None:
        """Called with ``text`` or ``bytes`` for each frame; does nothing by default."""

    def send(self, text: str | None = None, bytes: bytes | None = None,
             close: bool | int = False) -> None:
        """Send a frame to this socket (sent when the consumer returns); ``close`` (True or a
        close code) closes it after the frame."""
        self.message.reply_channel.send(self.encode_frame(text, bytes, close))

    @staticmethod
    def encode_frame(text: str | None = None, bytes: bytes | None = None,
                     close: bool | int = False) -> dict[str, Any]:
        content: dict[str, Any] = {}
        if text is not None:
            content["text"] = _frame_value("text", text, str, "WebsocketConsumer.send")
        elif bytes is not None:
            if isinstance(bytes, bytearray):
                bytes = builtins.bytes(bytes)  # servers send bytes frames only
            content["bytes"] = _frame_value("bytes", bytes, builtins.bytes,
                                            "WebsocketConsumer.send")
        elif not close:
            raise ValueError("Pass text or bytes (or close) to send")
        if close:
            content["close"] = close
        return content

    @classmethod
    def group_send(cls, name: str, text: str | None = None, bytes: bytes | None = None,
                   close: bool | int = False) -> None:
        """Send a frame to every socket in a group."""
        Group(name).send(cls.encode_frame(text, bytes, close))

    def close(self, status: bool | int = True) -> None:
        """Close the socket (``True`` = 1000, or a close code)."""
        self.message.reply_channel.send({"close": status})

    def raw_disconnect(self, message: Message, **kwargs: Any) -> None:
        for group in self.connection_groups(**kwargs):
            self._group(group).discard(message.reply_channel)
        self.disconnect(message, **kwargs)

    def disconnect(self, message: Message, **kwargs: Any) -> None:
        """Called after the socket left its groups; does nothing by default."""


class JsonWebsocketConsumer(WebsocketConsumer):
    """Frames are JSON documents: ``receive(content)`` gets them decoded, ``send(content)``
    encodes. Override ``decode_json``/``encode_json`` for another encoder."""

    def raw_receive(self, message: Message, **kwargs: Any) -> None:
        text = message.get("text")
        if text is None:
            raise ValueError(
                f"{type(self).__name__} only takes text frames; got a binary frame from "
                f"{message.reply_channel}"
            )
        try:
            content = self.decode_json(text)
        except ValueError as exc:
            raise ValueError(
                f"{type(self).__name__} got a frame that is not JSON ({exc}): {text[:200]!r}"
            ) from exc
        self.receive(content, **kwargs)

    def receive(self, content: Any = None, **kwargs: Any) -> None:  # type: ignore[override]
        """Called with each decoded frame; does nothing by default."""

    def send(self, content: Any, close: bool | int = False) -> None:  # type: ignore[override]
        multiplexer = self.kwargs.get("multiplexer")
        if multiplexer is not None:
            # Inside a demultiplexer a frame must carry its stream, or the client cannot route it.
            multiplexer.send(content)
            if close:
                self.close(close)
            return
        super().send(text=self.encode_json(content), close=close)

    @classmethod
    def group_send(cls, name: str, content: Any,  # type: ignore[override]
                   close: bool | int = False) -> None:
        WebsocketConsumer.group_send(name, cls.encode_json(content), close=close)

    @classmethod
    def decode_json(cls, text: str) -> Any:
        return json.loads(text)

    @classmethod
    def encode_json(cls, content: Any) -> str:
        return json.dumps(content)


class WebsocketMultiplexer:
    """Sends one stream's payloads on a shared socket as ``{"stream", "payload"}`` frames."""

    def __init__(self, stream: str, reply_channel: Channel) -> None:
        self.stream = stream
        self.reply_channel = reply_channel

    def send(self, payload: Any) -> None:
        self.reply_channel.send(self.encode(self.stream, payload))

    @classmethod
    def encode_json(cls, content: Any) -> str:
        # Payloads are often model data: dates, decimals and UUIDs must serialise.
        return json.dumps(content, cls=DjangoJSONEncoder)

    @classmethod
    def encode(cls, stream: str, payload: Any) -> dict[str, Any]:
        text = cls.encode_json({"stream": stream, "payload": payload})
        return {"text": _frame_value("text", text, str, f"{cls.__name__}.encode_json")}

    @classmethod
    def group_send(cls, name: str, stream: str, payload: Any, close: bool | int = False) -> None:
        content = cls.encode(stream, payload)
        if close:
            content["close"] = close
        Group(name).send(content)


class WebsocketDemultiplexer(JsonWebsocketConsumer):
    """One socket, several JSON consumers: ``consumers = {stream: Consumer}``.

    Client frames are ``{"stream": ..., "payload": {...}}``; the consumer of the stream gets the
    payload as its frame and a ``multiplexer`` kwarg to answer on the same stream. Connect and
    disconnect go to every consumer.
    """

    consumers: ClassVar[dict[str, Any]] = {}
    multiplexer_class: ClassVar[type[WebsocketMultiplexer]] = WebsocketMultiplexer

    def _multiplexer(self, stream: str) -> WebsocketMultiplexer:
        return self.multiplexer_class(stream, self.message.reply_channel)

    def receive(self, content: Any = None, **kwargs: Any) -> None:
        if not isinstance(content, dict) or "stream" not in content or "payload" not in content:
            raise ValueError(
                "A multiplexed frame must be a JSON object with 'stream' and 'payload' keys, "
                f"got {content!r:.200}"
            )
        stream, payload = content["stream"], content["payload"]
        if not isinstance(payload, dict):
            raise ValueError(f"The payload of stream {stream!r} must be a JSON object")
        consumer = self.consumers.get(stream) if isinstance(stream, str) else None
        if consumer is None:
            raise ValueError(
                f"No consumer for stream {stream!r} (streams: {sorted(self.consumers)})"
            )
        self.message.content["text"] = self.encode_json(payload)
        consumer(self.message, multiplexer=self._multiplexer(stream), **kwargs)

    def connect(self, message: Message, **kwargs: Any) -> None:
        self.accept()
        for stream, consumer in self.consumers.items():
            consumer(message, multiplexer=self._multiplexer(stream), **kwargs)

    def disconnect(self, message: Message, **kwargs: Any) -> None:
        for stream, consumer in self.consumers.items():
            consumer(message, multiplexer=self._multiplexer(stream), **kwargs)

    def send(self, *args: Any, **kwargs: Any) -> None:
        raise SendNotAvailableOnDemultiplexer(
            "A demultiplexer has no stream of its own; send through a stream's multiplexer"
        )

    @classmethod
    def group_send(cls, *args: Any, **kwargs: Any) -> None:
        raise SendNotAvailableOnDemultiplexer(
            "A demultiplexer has no stream of its own; use WebsocketMultiplexer.group_send"
        )
