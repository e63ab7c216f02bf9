"""The interface server: listening sockets, the one reply loop, timeouts and graceful shutdown.

Protocol objects (``http_protocol``, ``ws_protocol``) turn wire events into layer messages; this
module owns what they share: the process's reply channel prefixes, the map from reply channel to
socket, and the single asyncio task that receives every reply for this process and hands it to
its socket. Twisted runs on the asyncio reactor so that the layer's asyncio API (``send_async``,
``receive_batch_async``) runs on the reactor's own loop and never blocks it; a layer with only
the synchronous ASGI 1 API is called on threads instead (``sync_layer``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import string
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from channels.server.coalescing import CoalescingSender
from channels.server.http_protocol import HTTPFactory
from channels.server.sync_layer import server_layer
from channels.server.timeouts import DeadlineSweeper
from channels.server.transport import use_pass_flushing
from channels.server.ws_protocol import build_websocket_factory

logger = logging.getLogger("channels.server")

DEFAULT_MAX_REQUEST_BODY_SIZE = 16 * 1024 * 1024
DEFAULT_MAX_FRAME_SIZE = 1024 * 1024
DEFAULT_MAX_HEADER_SIZE = 16 * 1024
DEFAULT_MAX_HEADERS = 100
DEFAULT_REQUEST_TIMEOUT = 30.0
DEFAULT_SHUTDOWN_TIMEOUT = 10.0
#: Messages one socket may have queued towards the layer before it is told to slow down (1013).
DEFAULT_MAX_PENDING_MESSAGES = 100
REPLY_BATCH_SIZE = 100
REPLY_RETRY_FIRST_DELAY = 0.1
#: The longest pause between tries while the layer is down: how late replies may resume after
#: it is back (clients waiting on a handshake or a response wait that much longer).
REPLY_RETRY_MAX_DELAY = 0.5

ActionLogger = Callable[[Any, str, dict[str, Any]], None]


def random_name(length: int = 10) -> str:
    return "".join(secrets.choice(string.ascii_letters) for _ in range(length))


def install_reactor() -> Any:
    """Return the global reactor, installing Twisted's asyncio reactor if none is installed yet.

    Any other reactor cannot run the layer's asyncio API without blocking, so it is refused with
    an explanation rather than silently falling back to blocking calls.
    """
    if "twisted.internet.reactor" not in sys.modules:
        from twisted.internet import asyncioreactor

        try:
            loop = asyncio.get_event_loop_policy().get_event_loop()
        except RuntimeError:
            loop = None
        if loop is None or loop.is_closed() or loop.is_running():
            loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        asyncioreactor.install(loop)
    from twisted.internet import reactor
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor

    if not isinstance(reactor, AsyncioSelectorReactor):
        raise RuntimeError(
            f"channels.server needs Twisted's asyncio reactor, but {type(reactor).__name__} is "
            "already installed; start the server before anything imports twisted.internet.reactor"
        )
    return reactor


class Server:
    """HTTP/1.1 and WebSocket in front of a channel layer (see ``docs/server.md``)."""

    def __init__(
        self,
        channel_layer: Any,
        endpoints: list[str],
        signal_handlers: bool = True,
        action_logger: ActionLogger | None = None,
        http_timeout: float | None = 120,
        websocket_timeout: float | None = None,
        websocket_connect_timeout: float | None = 5,
        websocket_handshake_timeout: float | None = 5,
        ping_interval: float = 20,
        ping_timeout: float = 30,
        ws_protocols: list[str] | None = None,
        root_path: str = "",
        proxy_headers: bool = False,
        verbosity: int = 1,
        max_request_body_size: int | None = DEFAULT_MAX_REQUEST_BODY_SIZE,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        ready_callback: Callable[[list[tuple[Any, Any]]], None] | None = None,
        *,
        request_timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
        max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
        max_headers: int = DEFAULT_MAX_HEADERS,
        max_pending_messages: int = DEFAULT_MAX_PENDING_MESSAGES,
        per_message_deflate: bool = True,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        force_sync: bool = False,
        max_connections: int | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("Server needs at least one endpoint, e.g. 'tcp:port=8000'")
        # A layer with only the synchronous ASGI 1 API is served through threads (sync_layer).
        self.channel_layer = server_layer(channel_layer, force_sync)
        # Requests arriving together share one layer round trip (coalescing.py).
        self.request_sender = CoalescingSender(self.channel_layer, "http.request")
        # So do frames of different sockets (each socket's own order is kept by its sender,
        # which has at most one message in flight).
        self.frame_sender = CoalescingSender(self.channel_layer, "websocket.receive")
        self.endpoints = list(endpoints)
        self.signal_handlers = signal_handlers
        self.action_logger = action_logger
        self.http_timeout = http_timeout if http_timeout and http_timeout > 0 else None
        self.websocket_timeout = (
            websocket_timeout if websocket_timeout and websocket_timeout > 0 else None
        )
        # -1 (the documented "infinite") and 0 both mean: wait for the application forever.
        self.websocket_connect_timeout = (
            websocket_connect_timeout
            if websocket_connect_timeout and websocket_connect_timeout > 0
            else None
        )
        self.websocket_handshake_timeout = websocket_handshake_timeout or 0
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.ws_protocols = list(ws_protocols or [])
        self.root_path = root_path or ""
        self.proxy_headers = proxy_headers
        self.verbosity = verbosity
        self.max_request_body_size = max_request_body_size or None
        self.max_frame_size = max_frame_size
        self.ready_callback = ready_callback
        self.request_timeout = request_timeout if request_timeout and request_timeout > 0 else None
        self.max_header_size = max_header_size
        self.max_headers = max_headers
        self.max_pending_messages = max_pending_messages
        self.per_message_deflate = per_message_deflate
        self.shutdown_timeout = shutdown_timeout
        # Open connections (HTTP and WebSocket) held at most; None or 0: no limit.
        self.max_connections = max_connections or None

        # One process, two reply prefixes: HTTP replies on http.response.<proc>!<conn>, WebSocket
        # replies on websocket.send.<proc>!<conn>, so a reply channel's name says what it is.
        process_name = random_name()
        self.http_reply_prefix = f"http.response.{process_name}!"
        self.ws_reply_prefix = f"websocket.send.{process_name}!"
        self.reply_protocols: dict[str, Any] = {}
        self.http_channels: set[Any] = set()
        self.ws_connections: set[Any] = set()
        self.listening_ports: list[Any] = []
        self.stopping = False
        self.reactor: Any = None
        self.timeouts: Any = None  # a DeadlineSweeper once run() has the reactor
        self.loop: asyncio.AbstractEventLoop | None = None
        self._reply_task: asyncio.Task | None = None
        self._listen_errors: list[str] = []
        self._stop_requested = threading.Event()
        self.layer_unavailable_since: float | None = None

    # -- running ----------------------------------------------------------------------------

    def run(self) -> None:
        """Serve until stopped (signal or :meth:`stop`); raises if no endpoint could listen."""
        self.reactor = install_reactor()
        self.timeouts = DeadlineSweeper(self.reactor)
        self.http_factory = HTTPFactory(self)
        self.ws_factory = build_websocket_factory(self)
        self.reactor.callWhenRunning(self._start)
        self.reactor.addSystemEventTrigger("before", "shutdown", self._drain)
        in_main_thread = threading.current_thread() is threading.main_thread()
        self.reactor.run(installSignalHandlers=self.signal_handlers and in_main_thread)
        if self._listen_errors:
            raise RuntimeError("could not listen: " + "; ".join(self._listen_errors))

    def stop(self) -> None:
        """Shut down gracefully; safe to call from any thread, before or during :meth:`run`."""
        self._stop_requested.set()
        if self.reactor is not None and self.reactor.running:
            self.reactor.callFromThread(self._stop_reactor)

    def _stop_reactor(self) -> None:
        if self.reactor.running and not self.stopping:
            self.reactor.stop()

    def _start(self) -> None:
        from twisted.internet.defer import DeferredList

        self.loop = asyncio.get_event_loop()
        self._reply_task = self.loop.create_task(self._reply_loop())
        listening = [self._listen(description) for description in self.endpoints]
        DeferredList(listening, consumeErrors=True).addCallback(self._listening)

    def _listen(self, description: str) -> Any:
        from twisted.internet import defer
        from twisted.internet.endpoints import serverFromString

        try:
            if description.startswith("fd:"):
                return defer.succeed(self._adopt_fd(description))
            endpoint = serverFromString(self.reactor, description)
        except Exception as exc:  # noqa: BLE001 - reported below with the endpoint string
            return defer.fail(ValueError(f"{description}: {exc}"))
        deferred = endpoint.listen(self.http_factory)
        deferred.addErrback(lambda failure: defer.fail(ValueError(f"{description}: "
                                                                  f"{failure.value}")))
        return deferred

    def _adopt_fd(self, description: str) -> Any:
        """``fd:fileno=N[:domain=INET|INET6|UNIX]``: listen on a socket inherited from a parent
        (systemd, circus), which Twisted's own endpoint strings do not cover."""
        options = dict(part.split("=", 1) for part in description[3:].split(":") if part)
        domain = {"INET": socket.AF_INET, "INET6": socket.AF_INET6, "UNIX": socket.AF_UNIX}[
            options.get("domain", "INET").upper()
        ]
        fileno = int(options["fileno"])
        # Twisted accepts until EWOULDBLOCK; an inherited blocking socket would hang the reactor.
        os.set_blocking(fileno, False)
        return self.reactor.adoptStreamPort(fileno, domain, self.http_factory)

    def _listening(self, results: list[tuple[bool, Any]]) -> None:
        addresses = []
        for ok, result in results:
            if ok:
                use_pass_flushing(result)
                self.listening_ports.append(result)
                host = result.getHost()
                address = (getattr(host, "host", None), getattr(host, "port", None))
                if address == (None, None):
                    address = (getattr(host, "name", None), None)
                addresses.append(address)
                logger.info("Listening on %s", _describe(address))
            else:
                self._listen_errors.append(str(result.value))
                logger.error("Cannot listen on %s", result.value)
        if not self.listening_ports:
            self.reactor.stop()
            return
        self._listen_errors.clear()
        if self._stop_requested.is_set():
            self.reactor.stop()
            return
        if self.ready_callback is not None:
            try:
                self.ready_callback(addresses)
            except Exception:
                logger.exception("ready_callback failed")

    # -- replies ----------------------------------------------------------------------------

    async def _reply_loop(self) -> None:
        """Receive every reply for this process and hand each to its socket.

        One loop for all sockets (never one per socket): the layer blocks on the process prefix,
        so an idle server costs nothing and a reply is written as soon as it arrives. A layer
        outage is logged once, retried with back-off, and its end logged.
        """
        layer = self.channel_layer
        reply_channels = [self.http_reply_prefix, self.ws_reply_prefix]
        batched = hasattr(layer, "receive_batch_async")
        delay = REPLY_RETRY_FIRST_DELAY
        while True:
            try:
                if batched:
                    batch = await layer.receive_batch_async(reply_channels, REPLY_BATCH_SIZE)
                else:
                    channel, message = await layer.receive_async(reply_channels)
                    batch = [(channel, message)] if channel is not None else []
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the layer may fail in any way; we outlive it
                if self.layer_unavailable_since is None:
                    self.layer_unavailable_since = time.monotonic()
                    logger.error("Channel layer unavailable, replies paused: %r", exc)
                else:
                    logger.debug("Channel layer still unavailable: %r", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, REPLY_RETRY_MAX_DELAY)
                continue
            if self.layer_unavailable_since is not None:
                logger.warning(
                    "Channel layer is back after %.1f s; replies resume",
                    time.monotonic() - self.layer_unavailable_since,
                )
                self.layer_unavailable_since = None
            delay = REPLY_RETRY_FIRST_DELAY
            for channel, message in batch:
                self.dispatch_reply(channel, message)

    def dispatch_reply(self, channel: str, message: dict) -> None:
        protocol = self.reply_protocols.get(channel)
        if protocol is None:
            # The socket went away before its reply arrived: normal, nothing to do.
            logger.debug("Dropped a reply for %s: the connection is gone", channel)
            return
        try:
            protocol.handle_reply(message)
        except Exception:
            logger.exception("Error while handling a reply for %s", channel)

    # -- helpers for the protocols ----------------------------------------------------------

    def new_reply_channel(self, prefix: str) -> str:
        """A reply channel for one socket, under one of this process's reply prefixes.

        Whoever knows a reply channel's name can write to that socket, so the part that tells
        sockets apart is 96 bits from the OS's CSPRNG (16 characters of ``A-Za-z0-9_-``, all
        valid in channel names): not guessable from names a client has seen.
        """
        return prefix + secrets.token_urlsafe(12)

    def log_action(self, protocol: Any, action: str, details: dict[str, Any]) -> None:
        if self.action_logger is None:
            return
        try:
            self.action_logger(protocol, action, details)
        except Exception:
            logger.exception("action_logger failed")

    def call_later(self, delay: float, function: Callable, *args: Any) -> Any:
        return self.reactor.callLater(delay, function, *args)

    # -- shutdown ---------------------------------------------------------------------------

    def _drain(self) -> Any:
        """Stop accepting, let in-flight HTTP responses finish (bounded), close WebSockets 1001.

        Runs as a "before shutdown" trigger, so the reactor (and the reply loop) keep running
        until the returned Deferred fires.
        """
        from twisted.internet import defer

        self.stopping = True
        logger.info("Shutting down: closing listeners and WebSockets, finishing HTTP responses")
        for port in self.listening_ports:
            port.stopListening()
        for connection in list(self.ws_connections):
            connection.server_shutdown()
        for channel in list(self.http_channels):
            channel.server_shutdown()
        finished = defer.Deferred()
        deadline = time.monotonic() + self.shutdown_timeout

        def check() -> None:
            busy_http = [c for c in self.http_channels if c.is_busy()]
            if (busy_http or self.ws_connections) and time.monotonic() < deadline:
                self.reactor.callLater(0.05, check)
                return
            for channel in list(self.http_channels):
                channel.abort()
            for connection in list(self.ws_connections):
                connection.dropConnection(abort=True)
            if self._reply_task is not None:
                self._reply_task.cancel()
            # One more turn so the cancelled task and closing transports finish cleanly.
            self.reactor.callLater(0.01, finished.callback, None)

        check()
        return finished


def _describe(address: tuple[Any, Any]) -> str:
    host, port = address
    return f"{host}:{port}" if port is not None else str(host)
