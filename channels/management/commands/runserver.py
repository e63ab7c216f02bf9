"""``manage.py runserver``: the interface server plus worker threads, in one process.

Django's own runserver is kept for ``--noasgi`` and for projects without a ``default`` layer;
everything else (address parsing, system checks, migrations warning, autoreload, the banner)
is Django's code, only the server it starts differs.
"""

from __future__ import annotations

import datetime
import sys
import threading
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management.commands.runserver import Command as RunserverCommand
from django.db import connections
from django.utils import autoreload

from channels import DEFAULT_CHANNEL_LAYER
from channels.asgi import channel_layers
from channels.log import setup_logger
from channels.worker import Worker


class Command(RunserverCommand):
    help = "Starts the Channels development server: HTTP and WebSocket, with in-process workers."

    # Worker threads in the server process (one with --nothreading).
    worker_threads = 4

    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--noworker", action="store_false", dest="run_worker", default=True,
            help="Tells Django not to run a worker thread; you'll need to run one separately.",
        )
        parser.add_argument(
            "--noasgi", action="store_false", dest="use_asgi", default=True,
            help="Run the old WSGI-based runserver rather than the ASGI-based one.",
        )
        parser.add_argument(
            "--http_timeout", action="store", dest="http_timeout", type=int, default=60,
            help="Seconds to wait for a worker's HTTP response before answering 503 (default 60).",
        )
        parser.add_argument(
            "--websocket_handshake_timeout", action="store", dest="websocket_handshake_timeout",
            type=int, default=5,
            help="Seconds a WebSocket opening handshake may take (default 5).",
        )
        if apps.is_installed("django.contrib.staticfiles"):
            # staticfiles' own runserver options, since this command stands in for it too.
            parser.add_argument(
                "--nostatic", action="store_false", dest="use_static_handler", default=True,
                help="Tells Django to NOT automatically serve static files at STATIC_URL.",
            )
            parser.add_argument(
                "--insecure", action="store_true", dest="insecure_serving", default=False,
                help="Allows serving static files even if DEBUG is False.",
            )

    def handle(self, *args: Any, **options: Any) -> None:
        self.verbosity = options.get("verbosity", 1)
        self.logger = setup_logger("channels", self.verbosity)
        super().handle(*args, **options)

    # -- WSGI fallback ------------------------------------------------------------------------

    def get_handler(self, *args: Any, **options: Any) -> Any:
        handler = super().get_handler(*args, **options)
        if self._serve_static(options):
            from django.contrib.staticfiles.handlers import StaticFilesHandler

            return StaticFilesHandler(handler)
        return handler

    def _serve_static(self, options: dict[str, Any]) -> bool:
        return (
            apps.is_installed("django.contrib.staticfiles")
            and options.get("use_static_handler", True)
            and (settings.DEBUG or options.get("insecure_serving", False))
        )

    # -- ASGI ---------------------------------------------------------------------------------

    def inner_run(self, *args: Any, **options: Any) -> None:
        if not options.get("use_asgi", True) or DEFAULT_CHANNEL_LAYER not in channel_layers:
            if options.get("use_asgi", True):
                self.logger.warning("No %r channel layer configured; running the WSGI server",
                                    DEFAULT_CHANNEL_LAYER)
            return super().inner_run(*args, **options)
        from channels.server import Server

        # An exception silenced in the reloader's parent is raised in the child here.
        autoreload.raise_last_exception()
        if not options["skip_checks"]:
            self.stdout.write("Performing system checks...\n\n")
            self.check(display_num_errors=True)
        self.check_migrations()
        for connection in connections.all(initialized_only=True):
            connection.close()

        self.channel_layer = channel_layers[DEFAULT_CHANNEL_LAYER]
        http_consumer = None
        if self._serve_static(options):
            from channels.staticfiles import StaticFilesConsumer

            http_consumer = StaticFilesConsumer()
        self.channel_layer.router.check_default(http_consumer=http_consumer)

        if options.get("run_worker", True):
            count = self.worker_threads if options.get("use_threading", True) else 1
            for number in range(count):
                WorkerThread(self.channel_layer, number).start()
        elif self.channel_layer.local_only():
            self.logger.warning("--noworker with the in-memory layer: no other process can "
                                "reach it, so nothing will answer requests")

        address = self.addr.replace(":", r"\:")  # Twisted endpoint strings escape colons
        self.server = Server(
            channel_layer=self.channel_layer.channel_layer,
            endpoints=[f"tcp:port={self.port}:interface={address}"],
            signal_handlers=not options["use_reloader"],
            action_logger=self.log_action,
            http_timeout=options.get("http_timeout", 60),
            ws_protocols=getattr(settings, "CHANNELS_WS_PROTOCOLS", None),
            root_path=getattr(settings, "FORCE_SCRIPT_NAME", None) or "",
            websocket_handshake_timeout=options.get("websocket_handshake_timeout", 5),
            verbosity=self.verbosity,
            ready_callback=self._server_ready,
        )
        try:
            self.server.run()
        except RuntimeError as exc:
            # The server could not listen (port in use, bad address): say so, as Django does.
            self.stderr.write(f"Error: {exc}")
            sys.exit(1)
        except KeyboardInterrupt:
            pass
        shutdown_message = options.get("shutdown_message", "")
        if shutdown_message:
            self.stdout.write(shutdown_message)

    def _server_ready(self, addresses: list[tuple[Any, Any]]) -> None:
        """Print Django's banner once listening, with the real port (``0`` picks a free one)."""
        port = addresses[0][1] if addresses else self.port
        if hasattr(RunserverCommand, "on_bind"):  # Django 5.1+, and late 4.2 releases
            self.on_bind(port)
        else:
            self._print_django_banner(port)
        self.stdout.write(f"WebSocket URL: ws://{self._display_host()}:{port}/\n"
                          f"Channel layer {self.channel_layer}\n")
        self.stdout.flush()

    def _display_host(self) -> str:
        """The address as Django's banner shows it (``0`` means every IPv4 interface)."""
        if self._raw_ipv6:
            return f"[{self.addr}]"
        return "0.0.0.0" if self.addr == "0" else self.addr

    def _print_django_banner(self, port: Any) -> None:
        """Django's own banner, word for word, for Django versions whose runserver prints it
        inside ``inner_run`` (which this command replaces) instead of in ``on_bind``."""
        now = datetime.datetime.now().strftime("%B %d, %Y - %X")
        quit_command = "CTRL-BREAK" if sys.platform == "win32" else "CONTROL-C"
        self.stdout.write(
            f"{now}\nDjango version {self.get_version()}, using settings "
            f"{settings.SETTINGS_MODULE!r}\nStarting development server at "
            f"{self.protocol}://{self._display_host()}:{port}/\n"
            f"Quit the server with {quit_command}.\n"
        )

    def log_action(self, protocol: str, action: str, details: dict[str, Any]) -> None:
        """One coloured console line per HTTP request and WebSocket event.

        Keyed on the action alone: servers pass either a protocol name or the protocol object.
        """
        msg = None
        if action == "complete":
            status = details.get("status") or 0
            msg = "HTTP {} {} {} [{:.2f}, {}]".format(
                details.get("method"), details.get("path"), status,
                details.get("time_taken") or 0.0, details.get("client"),
            )
            if status >= 500:
                msg = self.style.ERROR(msg)
            elif status == 404:
                msg = self.style.HTTP_NOT_FOUND(msg)
            elif status >= 400:
                msg = self.style.WARNING(msg)
            elif status == 304:
                msg = self.style.HTTP_NOT_MODIFIED(msg)
            elif status >= 300:
                msg = self.style.HTTP_REDIRECT(msg)
            else:
                msg = self.style.HTTP_SUCCESS(msg)
        else:
            event = {"connecting": "HANDSHAKING", "connected": "CONNECT",
                     "rejected": "REJECT", "disconnected": "DISCONNECT"}.get(action)
            if event is not None:
                msg = f"WebSocket {event} {details.get('path')} [{details.get('client')}]"
                if event == "REJECT":
                    msg = self.style.WARNING(msg)
                elif event != "HANDSHAKING":
                    msg = self.style.HTTP_INFO(msg)
        if msg is not None:
            now = datetime.datetime.now().strftime("%Y/%m/%d %H:%M:%S")
            self.stderr.write(f"[{now}] {msg}")


class WorkerThread(threading.Thread):
    """A worker in a daemon thread: it dies with the server process (and its reloads)."""

    def __init__(self, channel_layer: Any, number: int) -> None:
        super().__init__(name=f"channels-runserver-worker-{number}", daemon=True)
        self.worker = Worker(channel_layer=channel_layer, signal_handlers=False)

    def run(self) -> None:
        self.worker.ready()
        self.worker.run()
