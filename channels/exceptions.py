"""Exceptions a consumer raises to steer the worker, with the Channels 1.1 names."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from channels.message import Message


class ConsumeLater(Exception):
    """The consumer cannot handle this message yet: put it back at the end of its channel.

    The worker re-queues it a bounded number of times (``Worker.message_retries``) so a message
    that can never be handled does not circulate forever.
    """


class ResponseLater(Exception):
    """Raised by a Django view that will answer on the reply channel from another consumer."""


class RequestTimeout(Exception):
    """The request body chunks did not arrive in time; the handler answers 408."""


class RequestAborted(Exception):
    """The client went away while its body was being received; nobody is left to answer."""


class DenyConnection(Exception):
    """Raised by a ``websocket.connect`` consumer to reject the handshake (HTTP 403)."""


class ChannelSocketException(Exception):
    """Base for exceptions that know how to answer the socket themselves.

    The worker (and the test client) call ``run(message)`` instead of logging a failure.
    """

    def run(self, message: Message) -> None:
        raise NotImplementedError


# Close codes an application may send (RFC 6455 §7.4: 1000 is a normal close, 3000-4999 are for
# libraries and applications; the others are reserved for the protocol itself).
_APPLICATION_CLOSE_CODES = range(3000, 5000)


class WebsocketCloseException(ChannelSocketException):
    """Close the WebSocket the current message came from, optionally with a close code.

    The original compared the reply channel's first dotted part with "websocket", which never
    matched a real server's reply names; here the check is on the channel the message arrived on.
    """

    def __init__(self, code: int | None = None) -> None:
        if code is not None and (
            isinstance(code, bool)
            or not isinstance(code, int)
            or (code != 1000 and code not in _APPLICATION_CLOSE_CODES)
        ):
            raise ValueError(f"invalid close code {code!r} (must be 1000 or from 3000 to 4999)")
        super().__init__(code)
        self._code = code

    def run(self, message: Message) -> None:
        if not message.channel.name.startswith("websocket.") or message.reply_channel is None:
            raise ValueError(
                "WebsocketCloseException can only be raised while handling a websocket.* message "
                f"with a reply channel (got a message on {message.channel.name!r})"
            )
        close: Any = self._code if self._code is not None else True
        message.reply_channel.send({"close": close}, immediately=True)


class SendNotAvailableOnDemultiplexer(Exception):
    """A demultiplexer has no single stream to send on; use the multiplexer it passes instead."""
