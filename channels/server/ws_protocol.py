"""WebSocket: Autobahn speaks the protocol, we translate its events into ``websocket.*``
messages and apply the ``websocket.send!`` replies.

The opening handshake is held (``onConnect`` returns a Deferred) until the application answers
``websocket.connect``; bytes the client sends meanwhile stay in Autobahn's buffer, bounded, and
become ``websocket.receive`` messages only after acceptance, so a receive never overtakes its
connect.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateOfferAccept
from autobahn.websocket.types import ConnectionDeny
from twisted.internet import defer
from twisted.internet.interfaces import ISSLTransport

from channels.server.layer_errors import is_channel_full, is_message_too_large, may_resend
from channels.server.proxy import forwarded_client
from channels.server.sending import OrderedSender

if TYPE_CHECKING:
    from channels.server.server import Server

logger = logging.getLogger("channels.server.ws")

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_ABNORMAL = 1006
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_TRY_AGAIN_LATER = 1013
# Reads pause at max_pending_messages; frames already read when that happened still queue, up
# to this many times that bound (one read of tiny frames), before a frame is refused with 1013.
PENDING_HARD_LIMIT_FACTOR = 10
# How long a websocket.receive refused with ChannelFull is retried (reads paused) before 1013.
RECEIVE_FULL_RETRY_SECONDS = 1.0
_REPLY_KEYS = {"text", "bytes", "close", "accept"}
#: How long websocket.connect is retried while its channel is full or the layer unreachable.
CONNECT_RETRY_SECONDS = 4.0
#: How long a WebSocket message keeps being retried while the layer is unreachable.
LAYER_RETRY_TIMEOUT = 60.0


def _valid_close_code(code: int) -> bool:
    # RFC 6455 §7.4: 1000 is the only code an endpoint sends itself among 1000-2999 that
    # applications may pick; 3000-4999 are for libraries and applications.
    return code == CLOSE_NORMAL or 3000 <= code <= 4999


class WebSocketProtocol(WebSocketServerProtocol):
    """One WebSocket connection between a client and the application."""

    server: Server

    def connectionMade(self) -> None:
        super().connectionMade()
        self.server = self.factory.channels_server
        self.reply_channel: str | None = None
        self.path = ""
        self.client_address: list | None = None
        self.order = 0
        self.subprotocol: str | None = None
        self.pending_handshake: defer.Deferred | None = None
        self.connect_delivered = False
        self.opened_at: float | None = None
        self.started_at = time.monotonic()
        self.muted = False  # no more websocket.receive (after 1013/1009 or a failed connect)
        self.sender = OrderedSender(
            self.server.channel_layer,
            self.server.max_pending_messages * PENDING_HARD_LIMIT_FACTOR,
            pause_at=self.server.max_pending_messages,
            on_backlog=self._backlog_changed,
            shared={"websocket.receive": self.server.frame_sender},
        )
        self._connect_timeout_call: Any = None
        self._lifetime_call: Any = None
        self.server.ws_connections.add(self)

    # -- opening handshake ------------------------------------------------------------------

    def onConnect(self, request: Any) -> defer.Deferred:
        # Autobahn's open-handshake timer covers parsing the request only; waiting for the
        # application is bounded separately by websocket_connect_timeout (which may be off).
        if self.openHandshakeTimeoutCall is not None:
            self.openHandshakeTimeoutCall.cancel()
            self.openHandshakeTimeoutCall = None
        if self.server.stopping:
            raise ConnectionDeny(503, "Server is shutting down")
        request_line, _, header_block = self.http_request_data.partition(b"\r\n")
        uri = request_line.split(b" ")[1] if request_line.count(b" ") >= 2 else b"/"
        raw_path, _, query_string = uri.partition(b"?")
        try:
            self.path = unquote_to_bytes(raw_path.decode("ascii")).decode("utf-8")
        except UnicodeDecodeError:
            raise ConnectionDeny(400, "Invalid characters in path") from None
        headers = []
        for line in header_block.split(b"\r\n"):
            name, colon, value = line.partition(b":")
            if colon and b"_" not in name:  # same CVE-2015-0219 guard as for HTTP
                headers.append([name.strip().lower(), value.strip()])
        peer, host = self.transport.getPeer(), self.transport.getHost()
        client = _address(peer)
        scheme = "wss" if ISSLTransport.providedBy(self.transport) else "ws"
        if self.server.proxy_headers:
            client, proxied_scheme = forwarded_client(headers, client, scheme)
            scheme = {"https": "wss", "http": "ws"}.get(proxied_scheme, proxied_scheme)
        self.client_address = client
        self.subprotocol = next(
            (offer for offer in request.protocols if offer in self.server.ws_protocols), None
        )
        self.reply_channel = self.server.new_reply_channel(self.server.ws_reply_prefix)
        self.server.reply_protocols[self.reply_channel] = self
        self.pending_handshake = defer.Deferred()
        self._connect_retry_deadline = time.monotonic() + CONNECT_RETRY_SECONDS
        self.sender.send("websocket.connect", {
            "reply_channel": self.reply_channel,
            "scheme": scheme,
            "path": self.path,
            "query_string": query_string,
            "root_path": self.server.root_path,
            "headers": headers,
            "client": client,
            "server": _address(host),
            "order": 0,
        }, self._connect_failed)
        self.connect_delivered = True
        if self.server.websocket_connect_timeout is not None:
            self._connect_timeout_call = self.server.call_later(
                self.server.websocket_connect_timeout, self._connect_timed_out
            )
        self.server.log_action(self, "connecting", self._log_details())
        return self.pending_handshake

    def dataReceived(self, data: bytes) -> None:
        # Autobahn's own version logs a debug line per read whose arguments (hltype, hlval)
        # are formatted whether or not debug logging is on: 4 % of the server's CPU under
        # echo load. The framework-independent handler it calls is all that is needed.
        self._dataReceived(data)

    def consumeData(self) -> None:
        if self.pending_handshake is not None and self.state == self.STATE_CONNECTING:
            # Frames sent before the handshake is accepted wait in Autobahn's buffer; the bound
            # is one maximum frame, so a client cannot make us hold more than that.
            if len(self.data) > self.server.max_frame_size:
                logger.info("Client sent more than %s bytes before acceptance: refused",
                            self.server.max_frame_size)
                self.deny(400, "Too much data before the handshake was accepted")
            return
        super().consumeData()

    def _connect_failed(self, exc: Exception) -> bool:
        full = is_channel_full(self.server.channel_layer, exc)
        if ((full or may_resend(exc)) and self.pending_handshake is not None
                and time.monotonic() < self._connect_retry_deadline):
            # The handshake is held anyway, so waiting a moment is the natural back-pressure:
            # a burst of connects (daphne#67: hundreds at once → 503s) drains as the workers
            # read, and a stale pooled connection after an outage is retried (nothing written).
            return True
        self.connect_delivered = False
        if full:
            logger.warning("websocket.connect is full: handshake refused with 503")
            self.deny(503, "Connection queue at capacity")
        else:
            log = logger.debug if self.server.layer_unavailable_since is not None \
                else logger.error
            log("Could not send websocket.connect (channel layer unavailable?): %r", exc)
            self.deny(503, "Channel layer unavailable")
        return False

    def _connect_timed_out(self) -> None:
        self._connect_timeout_call = None
        if self.pending_handshake is not None:
            logger.warning("No answer to websocket.connect for %s within %s s: refused (504)",
                           self.path, self.server.websocket_connect_timeout)
            self.deny(504, "The application did not accept the connection in time")

    def accept(self) -> None:
        if self.pending_handshake is None:
            return
        self._cancel_connect_timeout()
        handshake, self.pending_handshake = self.pending_handshake, None
        handshake.callback(self.subprotocol)

    def deny(self, code: int, reason: str) -> None:
        if self.pending_handshake is None:
            return
        self._cancel_connect_timeout()
        self.muted = True
        handshake, self.pending_handshake = self.pending_handshake, None
        handshake.errback(ConnectionDeny(code, reason))
        self.server.log_action(self, "rejected", self._log_details())

    def onOpen(self) -> None:
        self.opened_at = time.monotonic()
        if self.server.websocket_timeout is not None:
            self._lifetime_call = self.server.call_later(self.server.websocket_timeout,
                                                         self._lifetime_over)
        self.server.log_action(self, "connected", self._log_details())

    # -- frames from the client -------------------------------------------------------------

    def onMessageEnd(self) -> None:
        # Autobahn's version also fires a "message" event for observers (none are registered
        # here), building txaio futures for every frame: 6 % of the server's CPU under echo
        # load. Delivering the message is all that is needed.
        if not self.failedByMe:
            self.onMessage(b"".join(self.message_data), self.message_is_binary)
        self.message_data = None

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.muted or self.reply_channel is None:
            return
        self.order += 1
        message = {
            "reply_channel": self.reply_channel,
            "path": self.path,
            "order": self.order,
            "text": None if isBinary else payload.decode("utf-8"),
            "bytes": payload if isBinary else None,
        }
        if not self.sender.send("websocket.receive", message, self._retry_policy("receive")):
            logger.warning("%s has %s messages waiting for the layer: closed with 1013",
                           self.reply_channel, self.sender.max_pending)
            self._mute_and_close(CLOSE_TRY_AGAIN_LATER, "Too many pending messages")

    def _backlog_changed(self, backlogged: bool) -> None:
        """Stop reading the socket while the layer is behind, so a fast client is slowed by TCP
        flow control instead of being disconnected (daphne 1.x blocked its reactor instead)."""
        if self.transport is None or self.state == self.STATE_CLOSED:
            return
        if backlogged:
            logger.debug("%s: %s messages waiting for the layer, pausing reads",
                         self.reply_channel, len(self.sender.pending))
            self.transport.pauseProducing()
        else:
            self.transport.resumeProducing()

    def _retry_policy(self, what: str) -> Any:
        """Errors for websocket.receive/disconnect: full → 1013 now; unreachable → retry."""
        deadline = time.monotonic() + LAYER_RETRY_TIMEOUT
        full_since: list[float] = []

        def on_error(exc: Exception) -> bool:
            layer = self.server.channel_layer
            if is_channel_full(layer, exc):
                if what == "receive":
                    # A full channel is usually a burst the workers are about to absorb: stop
                    # reading and retry for a short, bounded time before answering 1013.
                    full_since.append(time.monotonic())
                    if full_since[-1] - full_since[0] < RECEIVE_FULL_RETRY_SECONDS:
                        self.sender.hold()
                        return True
                    logger.warning("websocket.receive is full: %s closed with 1013",
                                   self.reply_channel)
                    self._mute_and_close(CLOSE_TRY_AGAIN_LATER, "Channel layer at capacity")
                return False
            if is_message_too_large(layer, exc):
                self._mute_and_close(CLOSE_MESSAGE_TOO_BIG, "Message too large")
                return False
            if time.monotonic() > deadline:
                logger.error("Gave up sending websocket.%s for %s: %r", what, self.reply_channel,
                             exc)
                return False
            # During an outage the reply loop has said so once; a line per socket and retry
            # would bury it.
            log = logger.debug if self.server.layer_unavailable_since is not None \
                else logger.warning
            log("Retrying websocket.%s for %s: %r", what, self.reply_channel, exc)
            return True

        return on_error

    def _mute_and_close(self, code: int, reason: str) -> None:
        self.muted = True
        self.sender.pending.clear()
        self.close_with(code, reason)

    def close_with(self, code: int, reason: str | None = None) -> None:
        """Start the closing handshake with a server-side code.

        Autobahn's ``sendClose`` only lets applications pick 1000 or 3000-4999; 1001 (going away)
        and 1013 (try again later) are the server's own codes, sent as a plain close frame.
        """
        if self.state == self.STATE_OPEN:
            self.sendCloseFrame(code=code, reasonUtf8=reason.encode() if reason else None,
                                isReply=False)

    # -- replies from the application -------------------------------------------------------

    def handle_reply(self, message: dict) -> None:
        if not _REPLY_KEYS.issuperset(message):  # checked per frame: no set built when valid
            unknown = set(message) - _REPLY_KEYS
            logger.error("Ignored a websocket.send message with unknown keys %s", sorted(unknown))
            return
        text, data = message.get("text"), message.get("bytes")
        if text is not None and data is not None:
            logger.error("Ignored a websocket.send message with both 'text' and 'bytes'")
            return
        if (text is not None and not isinstance(text, str)) or (
                data is not None and not isinstance(data, bytes)):
            logger.error("Ignored a websocket.send message: 'text' must be str, 'bytes' bytes")
            return
        accept, close = message.get("accept"), message.get("close")
        if self.pending_handshake is not None:
            if accept is False:
                self.deny(403, "Access denied")
                return
            if accept or text is not None or data is not None:
                self.accept()
            elif close:
                self.deny(403, "Access denied")
                return
        if self.state != self.STATE_OPEN:
            return  # closing or closed: nothing more can be written
        if text is not None:
            self.sendMessage(text.encode("utf-8"), isBinary=False)
        if data is not None:
            self.sendMessage(data, isBinary=True)
        if close:
            code = CLOSE_NORMAL if close is True else close
            if not isinstance(code, int) or not _valid_close_code(code):
                logger.warning("Invalid close code %r from the application: closed with 1000",
                               close)
                code = CLOSE_NORMAL
            self.sendClose(code)

    # -- timers, shutdown, close ------------------------------------------------------------

    def _lifetime_over(self) -> None:
        self._lifetime_call = None
        if self.state == self.STATE_OPEN:
            self.sendClose(CLOSE_NORMAL)

    def server_shutdown(self) -> None:
        if self.pending_handshake is not None:
            self.deny(503, "Server is shutting down")
        elif self.state == self.STATE_OPEN:
            self.close_with(CLOSE_GOING_AWAY, "Server is shutting down")
        elif self.state != self.STATE_CLOSED:
            self.dropConnection(abort=True)

    def _cancel_connect_timeout(self) -> None:
        if self._connect_timeout_call is not None and self._connect_timeout_call.active():
            self._connect_timeout_call.cancel()
        self._connect_timeout_call = None

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self._cancel_connect_timeout()
        if self._lifetime_call is not None and self._lifetime_call.active():
            self._lifetime_call.cancel()
        self.pending_handshake = None  # the client left while we waited: nothing to answer
        self.server.ws_connections.discard(self)
        if self.reply_channel is None:
            return
        self.server.reply_protocols.pop(self.reply_channel, None)
        if self.connect_delivered:
            self.sender.send("websocket.disconnect", {
                "reply_channel": self.reply_channel,
                "code": code if code is not None else CLOSE_ABNORMAL,
                "path": self.path,
                "order": self.order + 1,
            }, self._retry_policy("disconnect"), force=True)
        if self.opened_at is not None:
            self.server.log_action(self, "disconnected", self._log_details())

    def _log_details(self) -> dict[str, Any]:
        client = self.client_address
        return {
            "path": self.path,
            "client": f"{client[0]}:{client[1]}" if client else None,
            "time_taken": time.monotonic() - self.started_at,
        }


def _address(address: Any) -> list | None:
    host, port = getattr(address, "host", None), getattr(address, "port", None)
    return [host, port] if host is not None and port is not None else None


def _accept_deflate(offers: list[Any]) -> Any:
    for offer in offers:
        if isinstance(offer, PerMessageDeflateOffer):
            return PerMessageDeflateOfferAccept(offer)
    return None


def build_websocket_factory(server: Server) -> WebSocketServerFactory:
    factory = WebSocketServerFactory(server="channels")
    factory.protocol = WebSocketProtocol
    factory.channels_server = server
    options: dict[str, Any] = {
        "autoPingInterval": server.ping_interval,
        "autoPingTimeout": server.ping_timeout,
        "openHandshakeTimeout": server.websocket_handshake_timeout,
        "maxFramePayloadSize": server.max_frame_size,
        "maxMessagePayloadSize": server.max_frame_size,
        "allowedOrigins": ["*"],
        # Failing a connection (bad UTF-8, oversized frame) sends a close frame with the code
        # (1007, 1009) instead of just dropping TCP, so the client learns why.
        "failByDrop": False,
    }
    if server.per_message_deflate:
        options["perMessageCompressionAccept"] = _accept_deflate
    factory.setProtocolOptions(**options)
    return factory
