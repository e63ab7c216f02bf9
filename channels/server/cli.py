"""``channels-server path.to.module:channel_layer`` — the command line of the interface server."""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import sys
from typing import Any

from channels.server.access import AccessLogGenerator
from channels.server.server import (
    DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_MAX_HEADER_SIZE,
    DEFAULT_MAX_PENDING_MESSAGES,
    DEFAULT_MAX_REQUEST_BODY_SIZE,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_SHUTDOWN_TIMEOUT,
    Server,
)

logger = logging.getLogger("channels.server")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="channels-server",
        description="HTTP and WebSocket interface server for a Channels channel layer.",
    )
    parser.add_argument("channel_layer",
                        help="the layer object, as path.to.module:attribute (e.g. "
                             "myproject.asgi:channel_layer)")
    parser.add_argument("-p", "--port", type=int, default=None,
                        help=f"TCP port (default {DEFAULT_PORT} when no other endpoint is given)")
    parser.add_argument("-b", "--bind", dest="host", default=None,
                        help=f"address to bind (default {DEFAULT_HOST}); IPv6 with or without []")
    parser.add_argument("-u", "--unix-socket", default=None, help="listen on this UNIX socket")
    parser.add_argument("--fd", type=int, default=None,
                        help="listen on an already-bound socket inherited as this file descriptor")
    parser.add_argument("-e", "--endpoint", dest="endpoints", action="append", default=[],
                        help="a Twisted endpoint string, e.g. ssl:443:privateKey=k.pem:certKey="
                             "c.pem (repeatable)")
    parser.add_argument("-v", "--verbosity", type=int, default=1,
                        help="0 = warnings, 1 = info (default), 2 = debug")
    parser.add_argument("-t", "--http-timeout", type=float, default=120,
                        help="seconds to wait for the application to START a response before "
                             "answering 503 (default 120; 0 = no limit)")
    parser.add_argument("--access-log", default=None,
                        help="file to append the access log to ('-' = stdout; default stdout "
                             "when verbosity >= 1)")
    parser.add_argument("--ping-interval", type=float, default=20,
                        help="seconds of WebSocket silence before a keepalive ping (default 20)")
    parser.add_argument("--ping-timeout", type=float, default=30,
                        help="seconds to wait for the pong before closing (default 30)")
    parser.add_argument("--websocket_timeout", "--websocket-timeout", type=float, default=None,
                        help="close WebSockets after this many seconds (default: never; "
                             "-1 = never)")
    parser.add_argument("--websocket_connect_timeout", "--websocket-connect-timeout", type=float,
                        default=5,
                        help="seconds the application may take to accept a WebSocket "
                             "(default 5; -1 = wait forever)")
    parser.add_argument("--websocket_handshake_timeout", "--websocket-handshake-timeout",
                        type=float, default=5,
                        help="seconds a client may take to complete the WebSocket handshake "
                             "request (default 5)")
    parser.add_argument("--ws-protocol", dest="ws_protocols", nargs="*", default=None,
                        help="WebSocket sub-protocols the server accepts")
    parser.add_argument("--root-path", default="",
                        help="root_path of every request (the script name the app is mounted at)")
    parser.add_argument("--proxy-headers", action="store_true",
                        help="trust X-Forwarded-For/-Port/-Proto (only behind a proxy you run)")
    parser.add_argument("--max-request-body-size", type=int,
                        default=DEFAULT_MAX_REQUEST_BODY_SIZE,
                        help="largest request body in bytes, larger gets 413 (default "
                             f"{DEFAULT_MAX_REQUEST_BODY_SIZE}; 0 = no limit)")
    parser.add_argument("--max-frame-size", type=int, default=DEFAULT_MAX_FRAME_SIZE,
                        help="largest WebSocket message in bytes, larger closes with 1009 "
                             f"(default {DEFAULT_MAX_FRAME_SIZE})")
    parser.add_argument("--max-header-size", type=int, default=DEFAULT_MAX_HEADER_SIZE,
                        help="largest request head (request line + headers) in bytes, larger "
                             f"gets 431 (default {DEFAULT_MAX_HEADER_SIZE})")
    parser.add_argument("--request-timeout", type=float, default=DEFAULT_REQUEST_TIMEOUT,
                        help="seconds a client has to send a request head (or may stall in a "
                             "body), and the keep-alive idle limit; 408 after (default "
                             f"{DEFAULT_REQUEST_TIMEOUT:g})")
    parser.add_argument("--shutdown-timeout", type=float, default=DEFAULT_SHUTDOWN_TIMEOUT,
                        help="seconds in-flight responses get on SIGTERM/SIGINT (default "
                             f"{DEFAULT_SHUTDOWN_TIMEOUT:g})")
    parser.add_argument("--max-pending-messages", type=int, default=DEFAULT_MAX_PENDING_MESSAGES,
                        help="messages of one connection waiting for the channel layer before "
                             "the server stops reading from that socket (default "
                             f"{DEFAULT_MAX_PENDING_MESSAGES})")
    parser.add_argument("--max-connections", type=int, default=0,
                        help="open connections (HTTP and WebSocket) held at most; one more is "
                             "answered 503 at once and closed (default 0: no limit)")
    parser.add_argument("--no-permessage-deflate", dest="per_message_deflate",
                        action="store_false",
                        help="do not negotiate WebSocket compression")
    parser.add_argument("--force-sync", action="store_true",
                        help="call the layer's synchronous API on threads even if it has the "
                             "asyncio extension (slower; for layers whose asyncio API misbehaves)")
    return parser


def build_endpoints(host: str | None, port: int | None, unix_socket: str | None,
                    file_descriptor: int | None) -> list[str]:
    """Endpoint strings for the simple options; ``-e`` strings are added as given."""
    endpoints = []
    if host is not None or port is not None:
        host = (host or DEFAULT_HOST).strip("[]").replace(":", r"\:")
        endpoints.append(f"tcp:port={port if port is not None else DEFAULT_PORT}:interface={host}")
    if unix_socket:
        endpoints.append(f"unix:{unix_socket}")
    if file_descriptor is not None:
        endpoints.append(f"fd:fileno={file_descriptor}")
    return endpoints


def import_layer(path: str) -> Any:
    """``module:attribute.path`` → the object; the working directory is importable, as for
    ``python -m`` (so ``myproject.asgi`` resolves when run from the project root)."""
    module_name, colon, attribute_path = path.partition(":")
    if not colon or not module_name or not attribute_path:
        raise ValueError(f"channel layer must look like path.to.module:attribute, got {path!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    value: Any = importlib.import_module(module_name)
    for attribute in attribute_path.split("."):
        value = getattr(value, attribute)
    return value


def configure_logging(verbosity: int) -> None:
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("channels")
    root.addHandler(handler)
    root.setLevel(level)
    if verbosity >= 2:
        from twisted.logger import STDLibLogObserver, globalLogBeginner

        globalLogBeginner.beginLoggingTo([STDLibLogObserver(name="twisted")],
                                         redirectStandardIO=False)


def freeze_startup_objects(addresses: Any = None) -> None:
    """Move everything allocated while starting (Django, Twisted, the layer) out of the GC's
    reach once the server listens.

    Those objects live as long as the process, yet every full collection walked all of them:
    about 25 ms with the reactor stopped, once every few seconds under load, which showed up in
    the latency tail. Frozen, a full collection only sees what requests allocate (~1 ms).
    """
    gc.collect()
    gc.freeze()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbosity)
    endpoints = sorted(
        build_endpoints(args.host, args.port, args.unix_socket, args.fd) + args.endpoints
    )
    if not endpoints:
        endpoints = build_endpoints(DEFAULT_HOST, DEFAULT_PORT, None, None)
    try:
        channel_layer = import_layer(args.channel_layer)
    except (ImportError, AttributeError, ValueError) as exc:
        print(f"channels-server: cannot load channel layer {args.channel_layer!r}: {exc}",
              file=sys.stderr)
        return 2

    access_log_stream = None
    if args.access_log == "-" or (args.access_log is None and args.verbosity >= 1):
        access_log_stream = sys.stdout
    elif args.access_log:
        access_log_stream = open(args.access_log, "a", encoding="utf-8")  # noqa: SIM115

    server = Server(
        channel_layer=channel_layer,
        endpoints=endpoints,
        action_logger=AccessLogGenerator(access_log_stream) if access_log_stream else None,
        http_timeout=args.http_timeout,
        websocket_timeout=args.websocket_timeout,
        websocket_connect_timeout=args.websocket_connect_timeout,
        websocket_handshake_timeout=args.websocket_handshake_timeout,
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        ws_protocols=args.ws_protocols,
        root_path=args.root_path,
        proxy_headers=args.proxy_headers,
        verbosity=args.verbosity,
        max_request_body_size=args.max_request_body_size,
        max_frame_size=args.max_frame_size,
        max_header_size=args.max_header_size,
        request_timeout=args.request_timeout,
        shutdown_timeout=args.shutdown_timeout,
        max_pending_messages=args.max_pending_messages,
        per_message_deflate=args.per_message_deflate,
        force_sync=args.force_sync,
        max_connections=args.max_connections,
        ready_callback=freeze_startup_objects,
    )
    logger.info("Starting server at %s, channel layer %s", ", ".join(endpoints),
                args.channel_layer)
    try:
        server.run()
    except RuntimeError as exc:
        logger.error("%s", exc)
        return 1
    finally:
        if access_log_stream is not None and access_log_stream is not sys.stdout:
            access_log_stream.close()
    return 0
