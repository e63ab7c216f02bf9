"""HTTP/1.1: Twisted parses the wire, we turn each request into ``http.request`` and write the
``http.response!`` replies back.

Limits with a defined answer, checked before anything reaches the layer: request line longer
than the header limit → 414, headers too large or too many → 431, body over the maximum → 413,
a client that does not send its request head within ``request_timeout`` (or stalls that long
in the middle of a body) → 408, a path that is not
ASCII or not percent-encoded UTF-8 → 400 (Twisted answers 400 to malformed request lines and
headers itself).
"""

from __future__ import annotations

import asyncio
import html
import logging
import time
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

from twisted.internet.interfaces import IProtocolNegotiationFactory, ISSLTransport
from twisted.protocols.policies import ProtocolWrapper
from twisted.web import http
from zope.interface import implementer

from channels.layers.base import LayerUnavailable
from channels.server.layer_errors import is_channel_full, is_message_too_large, may_resend
from channels.server.proxy import forwarded_client

if TYPE_CHECKING:
    from channels.server.server import Server

logger = logging.getLogger("channels.server.http")

#: Largest body sent inside ``http.request`` itself; the rest follows on ``body_channel`` in
#: chunks of this size. Well under the 1 MB every layer must accept, leaving room for headers.
BODY_CHUNK_SIZE = 512 * 1024

#: How long a refused client may keep sending (we discard it) before the socket is dropped.
#: Closing at once with unread data makes the kernel send RST, and the client may then never
#: read the error response we wrote.
LINGER_SECONDS = 2.0

_NO_BODY_STATUSES = {204, 304}
LAYER_RETRY_SECONDS = 1.0
#: Keep-alive idle timeout when request_timeout is switched off (Twisted's own default).
IDLE_TIMEOUT_WITHOUT_LIMIT = 12 * 60 * 60


def _as_bytes(value: Any, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("latin-1")
    raise TypeError(f"{what} must be bytes or str, not {type(value).__name__}")


def _address(address: Any) -> list | None:
    host, port = getattr(address, "host", None), getattr(address, "port", None)
    if host is None or port is None:
        # UNIX sockets and other non-IP transports: the message format lets client/server be
        # None.
        return None
    return [host, port]


async def _retrying(call: Any, *args: Any) -> Any:
    """``call(*args)``, retried briefly while the layer reports itself unreachable.

    Only a failure that wrote nothing is retried (``maybe_written`` false), so a retry cannot
    duplicate the message; one that may have reached the layer is answered as it is. The first
    call after an outage often fails on a pooled connection that died with it; a short retry
    turns that into a normal answer, while a real outage still gets its 503 within
    ``LAYER_RETRY_SECONDS``.
    """
    deadline = time.monotonic() + LAYER_RETRY_SECONDS
    delay = 0.02
    while True:
        try:
            return await call(*args)
        except LayerUnavailable as exc:
            if not may_resend(exc) or time.monotonic() + delay > deadline:
                raise
            await asyncio.sleep(delay)
            delay *= 2


class WebRequest(http.Request):
    """One HTTP request and the response the application sends back for it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.server: Server = self.channel.server
        self.reply_channel: str | None = None
        self.response_started = False
        self.forwarded = False  # http.request reached the layer: the app knows this request
        self.started_at = time.monotonic()
        self.body_size = 0
        self.client_address: list | None = None
        self._response_deadline: Any = None
        self._path_text = "/"

    # -- receiving --------------------------------------------------------------------------

    def handleContentChunk(self, data: bytes) -> None:
        # Chunked bodies announce no length, so the limit is enforced as bytes arrive.
        self.body_size += len(data)
        limit = self.server.max_request_body_size
        if limit is not None and self.body_size > limit:
            self.channel.refuse(413, "Content Too Large", "Request body is too large.")
            return
        super().handleContentChunk(data)

    def process(self) -> None:
        self.started_at = time.monotonic()
        if self._is_websocket_upgrade():
            self._hand_over_to_websocket()
            return
        try:
            raw_path = self.path.decode("ascii")
            path = unquote_to_bytes(raw_path).decode("utf-8")
        except UnicodeDecodeError:
            self.respond_error(400, "Invalid characters in path")
            return
        self._path_text = path
        query_string = self.uri.partition(b"?")[2]
        headers = self._header_list()
        client = _address(self.getClientAddress())
        scheme = "https" if self.isSecure() else "http"
        if self.server.proxy_headers:
            client, scheme = forwarded_client(headers, client, scheme)
        self.client_address = client
        self.content.seek(0)
        body = self.content.read(BODY_CHUNK_SIZE)
        more_body = bool(self.content.read(1))
        self.content.seek(len(body))

        self.reply_channel = self.server.new_reply_channel(self.server.http_reply_prefix)
        self.server.reply_protocols[self.reply_channel] = self
        message = {
            "reply_channel": self.reply_channel,
            "http_version": self.clientproto.decode("ascii").partition("/")[2] or "1.0",
            "method": self.method.decode("ascii", "replace").upper(),
            "scheme": scheme,
            "path": path,
            "query_string": query_string,
            "root_path": self.server.root_path,
            "headers": headers,
            "body": body,
            "body_channel": None,
            "client": client,
            "server": _address(self.getHost()),
        }
        if self.server.http_timeout is not None:
            self._response_deadline = self.server.timeouts.deadline(self._timed_out)
            self._response_deadline.arm(self.server.http_timeout)
        sender = self.server.request_sender
        if more_body or not sender.batching:
            self.server.loop.create_task(self._forward(message, more_body))
        else:
            sender.submit(message).add_done_callback(partial(self._request_sent, message))

    def _header_list(self) -> list[list[bytes]]:
        """Lower-cased ``[name, value]`` pairs, one per value, in arrival order per name.

        Names containing ``_`` are dropped: once turned into ``HTTP_*`` keys by Django they are
        indistinguishable from the ``-`` spelling, which lets a client spoof headers a proxy set
        (the CVE-2015-0219 guard Django's own servers apply).
        """
        pairs = []
        for name, values in self.requestHeaders.getAllRawHeaders():
            if b"_" in name:
                continue
            lowered = name.lower()
            pairs.extend([lowered, value] for value in values)
        return pairs

    def _request_sent(self, message: dict, future: asyncio.Future) -> None:
        """Outcome of a body-less request handed straight to the coalescing sender."""
        if future.cancelled():
            return  # shutting down, as for a cancelled ``_forward``
        exc = future.exception()
        if exc is None:
            self._forwarded()
        elif may_resend(exc):
            # Nothing was written: the usual path retries it briefly before answering 503.
            self.server.loop.create_task(self._forward(message, False))
        else:
            self._not_forwarded(message, exc)

    async def _forward(self, message: dict, more_body: bool) -> None:
        layer = self.server.channel_layer
        try:
            if more_body:
                message["body_channel"] = await _retrying(
                    layer.new_channel_async, "http.request.body?")
            await _retrying(self.server.request_sender.send, message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - each failure is answered below
            self._not_forwarded(message, exc)
            return
        if self._forwarded() and more_body:
            await self._send_body(message["body_channel"])

    def _forwarded(self) -> bool:
        """The app has the request; whether the client is still there to send it a body."""
        self.forwarded = True
        if self._disconnected:
            # The client left while the request was on its way: the app must still hear of it.
            self._notify_disconnect()
            return False
        return True

    def _not_forwarded(self, message: dict, exc: BaseException) -> None:
        layer = self.server.channel_layer
        if is_channel_full(layer, exc):
            logger.warning("http.request is full: answered %s %s with 503",
                           message["method"], message["path"])
            self.respond_error(503, "Request queue full.")
        elif is_message_too_large(layer, exc):
            logger.warning("http.request too large for the layer: %r", exc)
            self.respond_error(431, "Request headers too large.")
        else:
            # During an outage the reply loop has said so once; the access log has each 503.
            log = logger.debug if self.server.layer_unavailable_since is not None \
                else logger.error
            log("Could not send http.request (channel layer unavailable?): %r", exc)
            self.respond_error(503, "Service unavailable: channel layer unreachable.")

    async def _send_body(self, body_channel: str) -> None:
        """Stream the rest of the body; a full body channel is waited on (the app reads it)."""
        layer = self.server.channel_layer
        deadline = time.monotonic() + (self.server.http_timeout or 120)
        chunk = self.content.read(BODY_CHUNK_SIZE)
        delay = 0.01
        while True:
            if self._disconnected or self.finished:
                # The client left, or was already answered (a timeout): tell the app to abandon
                # the body rather than feeding it the rest.
                await self._send_quietly(layer, body_channel, {"closed": True, "content": b"",
                                                                "more_content": False})
                return
            following = self.content.read(BODY_CHUNK_SIZE)
            part = {"content": chunk, "closed": False, "more_content": bool(following)}
            try:
                await layer.send_async(body_channel, part)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - retried until the deadline
                if time.monotonic() > deadline:
                    logger.error("Gave up sending the request body to %s: %r", body_channel, exc)
                    self.respond_error(503, "Request body could not be delivered.")
                    return
                self.content.seek(-len(following), 1)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            delay = 0.01
            if not following:
                return
            chunk = following

    async def _send_quietly(self, layer: Any, channel: str, message: dict) -> None:
        try:
            await layer.send_async(channel, message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - best effort: the client is gone anyway
            logger.debug("Could not send to %s: %r", channel, exc)

    # -- WebSocket hand-over ----------------------------------------------------------------

    def _is_websocket_upgrade(self) -> bool:
        upgrade = self.requestHeaders.getRawHeaders(b"upgrade") or [b""]
        return upgrade[0].strip().lower() == b"websocket"

    def _hand_over_to_websocket(self) -> None:
        from autobahn.twisted.resource import WebSocketResource

        try:
            self.path.decode("ascii")
        except UnicodeDecodeError:
            self.respond_error(400, "Invalid characters in path")
            return
        if self.server.stopping:
            self.respond_error(503, "Server is shutting down.")
            return
        # From here on the socket belongs to Autobahn; this HTTP channel will never finish.
        self.server.http_channels.discard(self.channel)
        transport = self.channel.transport
        WebSocketResource(self.server.ws_factory).render(self)
        self.channel.hand_over(_wrapped_protocol(transport))

    # -- responding -------------------------------------------------------------------------

    def handle_reply(self, message: dict) -> None:
        """Write one ``http.response!`` message (the first carries the status)."""
        if self.finished or self._disconnected:
            self._forget_reply_channel()
            return
        more_content = bool(message.get("more_content", False))
        content = message.get("content", b"")
        if not isinstance(content, bytes):
            logger.error("Response content must be bytes, got %s: dropped", type(content).__name__)
            if not self.response_started:
                self.respond_error(500, "Invalid response from the application.")
            return
        if not self.response_started:
            try:
                status, headers = self._check_start(message)
            except (TypeError, ValueError) as exc:
                logger.error("Invalid first response message for %s: %s", self._path_text, exc)
                self.respond_error(500, "Invalid response from the application.")
                return
            self.response_started = True
            self._cancel_timeout()
            self.setResponseCode(status)
            for name, value in headers:
                self.responseHeaders.addRawHeader(name, value)
            if (not more_content and not self.responseHeaders.hasHeader(b"content-length")
                    and self.method != b"HEAD" and status not in _NO_BODY_STATUSES
                    and status >= 200):
                # A complete body: say its length rather than falling back to chunked encoding.
                self.responseHeaders.setRawHeaders(b"content-length", [str(len(content)).encode()])
        elif "status" in message:
            logger.warning("Ignored a second 'status' in the response to %s", self._path_text)
        if content:
            self.write(content)
        if not more_content:
            self._forget_reply_channel()
            self.finish()
            self._log_complete()

    @staticmethod
    def _check_start(message: dict) -> tuple[int, list[tuple[bytes, bytes]]]:
        status = message.get("status")
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 999:
            raise ValueError(f"'status' must be an int HTTP status, got {status!r}")
        headers = []
        raw_headers = message.get("headers") or []
        if isinstance(raw_headers, dict):  # an early ASGI draft allowed a dict
            raw_headers = list(raw_headers.items())
        for pair in raw_headers:
            if len(pair) != 2:
                raise ValueError(f"header must be a [name, value] pair, got {pair!r}")
            headers.append((_as_bytes(pair[0], "header name"), _as_bytes(pair[1], "header value")))
        return status, headers

    def respond_error(self, status: int, text: str) -> None:
        """A small HTML error page, unless a response is already under way or the client left."""
        self._cancel_timeout()
        self._forget_reply_channel()
        if self.response_started or self.finished or self._disconnected:
            return
        self.response_started = True
        reason = http.RESPONSES.get(status, b"Error").decode("latin-1")
        page = (
            f"<!DOCTYPE html><html><head><title>{status} {reason}</title></head>"
            f"<body><h1>{status} {reason}</h1><p>{html.escape(text)}</p></body></html>"
        ).encode()
        self.setResponseCode(status)
        self.responseHeaders.setRawHeaders(b"content-type", [b"text/html; charset=utf-8"])
        self.responseHeaders.setRawHeaders(b"content-length", [str(len(page)).encode()])
        # An error page ends the connection: a client that sent a bad request, or a server that
        # is overloaded or cut off from its layer, should not get more pipelined requests.
        self.responseHeaders.setRawHeaders(b"connection", [b"close"])
        self.channel.persistent = False
        self.write(page)
        self.finish()
        self._log_complete()

    def _timed_out(self) -> None:
        self._response_deadline = None  # fired: drop it (it refers back to this request)
        if self.response_started or self.finished:
            return  # the timeout only covers the wait for the response to START
        logger.warning("No response to %s %s within %s s: answered 503",
                       self.method.decode("ascii", "replace"), self._path_text,
                       self.server.http_timeout)
        self.respond_error(503, "Worker server failed to respond within time limit.")

    def _cancel_timeout(self) -> None:
        if self._response_deadline is not None:
            self._response_deadline.cancel()
            # Also drop it: it refers back to this request, and without that cycle the
            # request is freed by reference counting as soon as Twisted lets go of it.
            self._response_deadline = None

    def _forget_reply_channel(self) -> None:
        if self.reply_channel is not None:
            self.server.reply_protocols.pop(self.reply_channel, None)

    def _log_complete(self) -> None:
        if self.server.action_logger is None:
            return  # no access log: skip building its details on every response
        client = self.client_address or _address(self.getClientAddress())
        self.server.log_action(self, "complete", {
            "path": self.uri.decode("latin-1"),
            "status": self.code,
            "method": self.method.decode("ascii", "replace"),
            "client": f"{client[0]}:{client[1]}" if client else None,
            "time_taken": time.monotonic() - self.started_at,
            "size": self.sentLength,
        })

    def connectionLost(self, reason: Any) -> None:
        super().connectionLost(reason)
        self._cancel_timeout()
        self._forget_reply_channel()
        self._notify_disconnect()

    def _notify_disconnect(self) -> None:
        """http.disconnect is "sent when a client goes away" — before its response finished.

        A completed response needs no second notice (the original sent one after every response;
        see docs/server.md), and a request the app never received needs none at all.
        """
        if not self.forwarded or self.reply_channel is None:
            return
        self.forwarded = False  # one notice only
        message = {"reply_channel": self.reply_channel, "path": self._path_text}
        asyncio.get_event_loop().create_task(
            self._send_quietly(self.server.channel_layer, "http.disconnect", message)
        )

    def finish(self) -> None:
        self.forwarded = False  # finished normally: no http.disconnect afterwards
        super().finish()


def _wrapped_protocol(transport: Any) -> Any:
    """The protocol Autobahn installed on ``transport`` (under a TLS wrapper if there is one)."""
    if isinstance(transport, ProtocolWrapper):
        return transport.wrappedProtocol
    if isinstance(transport.protocol, ProtocolWrapper):
        return transport.protocol.wrappedProtocol
    return transport.protocol


#: Transport class → whether it is TLS (see HTTPChannel.isSecure).
_SECURE_TRANSPORTS: dict[type, bool] = {}


class HTTPChannel(http.HTTPChannel):
    """Twisted's HTTP/1.1 parser with our limits and a deadline for slow clients."""

    requestFactory = WebRequest
    _idle_deadline: Any = None
    _secure: bool | None = None
    _host: Any = None
    _peer: Any = None

    def connectionMade(self) -> None:
        self.server: Server = self.factory.server
        self.upgraded_protocol: Any = None
        self.refused = False
        self._header_bytes = 0
        self._header_lines = 0
        timeouts = self.server.timeouts
        self._request_deadline = timeouts.deadline(self._request_timed_out)
        # Twisted's keep-alive idle timeout (TimeoutMixin) on the shared sweep: see setTimeout.
        self._idle_deadline = timeouts.deadline(self.timeoutConnection)
        self._linger_call: Any = None
        # Our limits answer 414/431 before Twisted's own (which only say 400) can trigger.
        self.MAX_LENGTH = self.server.max_header_size
        self.totalHeadersSize = self.server.max_header_size * 2 + 1024
        self.maxHeaders = self.server.max_headers * 2 + 10
        super().connectionMade()
        self.server.http_channels.add(self)
        limit = self.server.max_connections
        if limit is not None and \
                len(self.server.http_channels) + len(self.server.ws_connections) > limit:
            # Refused at once rather than queued: the client learns to retry (elsewhere), and
            # the connections already open keep the process's file descriptors and memory.
            self.refuse(503, "Service Unavailable", "Too many connections.")

    def isSecure(self) -> bool:
        # Asked for every request. Whether a transport is TLS is declared by its class (the
        # interface adaptation Twisted does each time), so the answer is kept per class.
        if self._secure is None:
            kind = type(self.transport)
            secure = _SECURE_TRANSPORTS.get(kind)
            if secure is None:
                secure = _SECURE_TRANSPORTS[kind] = super().isSecure()
            self._secure = secure
        return self._secure

    def getHost(self) -> Any:
        # Twisted's Request asks for both addresses on every request, and the local one costs a
        # getsockname() system call each time; neither changes while the connection lives.
        if self._host is None:
            self._host = super().getHost()
        return self._host

    def getPeer(self) -> Any:
        if self._peer is None:
            self._peer = super().getPeer()
        return self._peer

    def dataReceived(self, data: bytes) -> None:
        if self.refused:
            return  # lingering: read and discard so the client can read our error response
        if (not self._handlingRequest and self.server.request_timeout is not None
                and not self._request_deadline.active()):
            self._request_deadline.arm(self.server.request_timeout)
        super().dataReceived(data)

    def lineReceived(self, line: bytes) -> None:
        if self.refused:
            return
        self._header_lines += 1
        self._header_bytes += len(line) + 2
        if self._header_bytes > self.server.max_header_size:
            self.refuse(431, "Request Header Fields Too Large", "Request headers are too large.")
            return
        if self._header_lines > self.server.max_headers + 2:  # + request line + blank line
            self.refuse(431, "Request Header Fields Too Large", "Too many request headers.")
            return
        super().lineReceived(line)

    def lineLengthExceeded(self, line: bytes) -> None:
        if self._header_lines == 0:
            self.refuse(414, "URI Too Long", "Request line is too long.")
        else:
            self.refuse(431, "Request Header Fields Too Large", "A request header is too long.")

    def rawDataReceived(self, data: bytes) -> None:
        if self.upgraded_protocol is not None:
            # Bytes that arrived in the same read as the upgrade request (frames a client sent
            # before the 101) are still parsed by this channel: they belong to the WebSocket.
            self.upgraded_protocol.dataReceived(data)
            return
        if self.refused:
            return
        if self._request_deadline.active() and not self._handlingRequest:
            # Receiving a body: progress resets the clock (see allHeadersReceived).
            self._request_deadline.arm(self.server.request_timeout)
        super().rawDataReceived(data)

    def hand_over(self, protocol: Any) -> None:
        """The connection is now a WebSocket; pass on anything already buffered here."""
        self.upgraded_protocol = protocol
        # This channel's own timers are over (the WebSocket has its own), and Twisted may never
        # call its connectionLost: close the deadlines now so they do not keep it alive.
        self._request_deadline.close()
        self._idle_deadline.close()
        buffered, self._dataBuffer = b"".join(self._dataBuffer), []
        if buffered:
            protocol.dataReceived(buffered)

    def allHeadersReceived(self) -> None:
        self._header_bytes = 0
        self._header_lines = 0
        limit = self.server.max_request_body_size
        if limit is not None and self.length is not None and self.length > limit:
            # Refuse on the announced length, before "100 Continue" invites the upload.
            self.refuse(413, "Content Too Large", "Request body is too large.")
            return
        # The head had to arrive within request_timeout. A body may take longer (a big upload
        # on a slow link) as long as it keeps moving: from here the timer restarts on every
        # chunk, and only a stall of request_timeout answers 408.
        self._cancel_request_deadline()
        if self.length != 0 and self.server.request_timeout is not None:
            self._request_deadline.arm(self.server.request_timeout)
        super().allHeadersReceived()

    def allContentReceived(self) -> None:
        if self.refused:
            return
        self._cancel_request_deadline()
        super().allContentReceived()

    def _request_timed_out(self) -> None:
        if not self._handlingRequest and not self.refused:
            logger.info("Client %s did not finish its request within %s s: 408",
                        self.transport.getPeer(), self.server.request_timeout)
            self.refuse(408, "Request Timeout", "The request was not completed in time.")

    def _cancel_request_deadline(self) -> None:
        self._request_deadline.cancel()

    def setTimeout(self, period: float | None) -> float | None:
        """TimeoutMixin's idle timeout, kept on the server's deadline sweep.

        Twisted arms, cancels and re-arms this timer for every request on a connection; as a
        reactor ``callLater`` each of those is a heap operation, here a dict operation.
        """
        if self._idle_deadline is None:
            return super().setTimeout(period)
        previous, self.timeOut = self.timeOut, period
        if period is None:
            self._idle_deadline.cancel()
        else:
            self._idle_deadline.arm(period)
        return previous

    def resetTimeout(self) -> None:
        if self._idle_deadline is None:
            super().resetTimeout()
        elif self.timeOut is not None and self._idle_deadline.active():
            self._idle_deadline.arm(self.timeOut)

    def refuse(self, status: int, reason: str, text: str) -> None:
        """Answer a request we will not parse further, then close the connection."""
        if self.refused or self.transport is None:
            return
        self.refused = True
        self._cancel_request_deadline()
        peer = self.transport.getPeer()
        logger.info("Refused a request from %s: %s %s", peer, status, reason)
        body = f"{status} {reason}: {text}\n".encode()
        client = _address(peer)
        self.server.log_action(self, "complete", {
            "path": "-", "status": status, "method": "-", "time_taken": None, "size": len(body),
            "client": f"{client[0]}:{client[1]}" if client else None,
        })
        self.transport.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
        )
        self.setTimeout(None)
        half_close = getattr(self.transport, "loseWriteConnection", None)
        if half_close is not None:
            half_close()
            self._linger_call = self.callLater(LINGER_SECONDS, self.transport.loseConnection)
        else:
            self.transport.loseConnection()

    def is_busy(self) -> bool:
        """A response is still being produced for this connection."""
        return bool(self.requests) and self._handlingRequest

    def server_shutdown(self) -> None:
        """Close idle keep-alive connections; busy ones close after their response."""
        self.persistent = False
        if not self.is_busy() and self.transport is not None:
            self.transport.loseConnection()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abortConnection()

    def connectionLost(self, reason: Any) -> None:
        self._cancel_request_deadline()
        if self._linger_call is not None and self._linger_call.active():
            self._linger_call.cancel()
        self.server.http_channels.discard(self)
        super().connectionLost(reason)
        # The deadlines call back into this channel: close them so no cycle outlives it.
        self._request_deadline.close()
        self._idle_deadline.close()


@implementer(IProtocolNegotiationFactory)
class HTTPFactory(http.HTTPFactory):
    """Builds :class:`HTTPChannel` for every connection; knows the :class:`Server`."""

    protocol = HTTPChannel

    def __init__(self, server: Server) -> None:
        # Twisted's idle timeout closes keep-alive connections nobody uses.
        super().__init__(timeout=server.request_timeout or IDLE_TIMEOUT_WITHOUT_LIMIT)
        self.server = server

    def buildProtocol(self, addr: Any) -> HTTPChannel:
        channel = super().buildProtocol(addr)
        channel.factory = self
        return channel

    def log(self, request: Any) -> None:
        """Access logging is the server's ``action_logger``; Twisted's own log stays silent."""

    def acceptableProtocols(self) -> list[bytes]:
        """ALPN for TLS endpoints: HTTP/1.1 (WebSocket upgrades included), never h2.

        Every browser offers ALPN; a TLS server factory that names no protocol makes Twisted's
        selection answer nothing, and OpenSSL then fails the handshake ("internal error").
        """
        return [b"http/1.1"]


def is_secure(transport: Any) -> bool:
    return ISSLTransport.providedBy(transport)
