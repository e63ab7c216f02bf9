"""A TCP proxy in front of a real Redis that can cut or stall a connection at a chosen command.

The windows the hardening tests aim at (a reply lost after Redis ran the command, a caller
cancelled while a reply is on its way) last microseconds on a real network; this proxy holds
them open deterministically while everything else stays real: real sockets, real Redis.
"""

from __future__ import annotations

import socket
import threading
from urllib.parse import urlparse


class FaultProxy:
    """Forwards 127.0.0.1:<port> to a Redis URL; one pair of pump threads per connection.

    ``cut_before(marker)``: the next client chunk containing ``marker`` is not forwarded and
    that connection is closed (the command never reaches Redis).
    ``hold_reply_after(marker)``: the next client chunk containing ``marker`` is forwarded, and
    that connection's replies are held back until :meth:`release` (``seen`` is set meanwhile).
    """

    def __init__(self, redis_url: str) -> None:
        target = urlparse(redis_url)
        self.target = (target.hostname or "127.0.0.1", target.port or 6379)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._lock = threading.Lock()
        self._cut_marker: bytes | None = None
        self._hold_marker: bytes | None = None
        self.seen = threading.Event()
        self._released = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._start(self._accept)

    def cut_before(self, marker: bytes) -> None:
        with self._lock:
            self._cut_marker = marker

    def hold_reply_after(self, marker: bytes) -> None:
        with self._lock:
            self._hold_marker = marker
            self.seen.clear()
            self._released.clear()

    def release(self) -> None:
        self._released.set()

    def cut_all(self) -> None:
        """Close every proxied connection now (replies held back are never delivered)."""
        for sock in list(self._sockets):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self._closed = True
        self._released.set()
        for sock in [self._listener, *self._sockets]:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in self._threads:
            thread.join(5)

    # -- internals ------------------------------------------------------------------------

    def _start(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self._sockets += [client, server]
            held = threading.Event()
            self._start(self._upstream, client, server, held)
            self._start(self._downstream, server, client, held)

    def _upstream(self, client: socket.socket, server: socket.socket,
                  held: threading.Event) -> None:
        while True:
            try:
                chunk = client.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            holding = False
            with self._lock:
                if self._cut_marker is not None and self._cut_marker in chunk:
                    self._cut_marker = None
                    break
                if self._hold_marker is not None and self._hold_marker in chunk:
                    self._hold_marker = None
                    held.set()
                    holding = True
            try:
                server.sendall(chunk)
            except OSError:
                break
            if holding:
                # Only once forwarded: a test that cuts the connection on ``seen`` must not
                # cut it before the command reached Redis.
                self.seen.set()
        for sock in (client, server):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _downstream(self, server: socket.socket, client: socket.socket,
                    held: threading.Event) -> None:
        while True:
            try:
                chunk = server.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            if held.is_set():
                self._released.wait(10)
            try:
                client.sendall(chunk)
            except OSError:
                break
        for sock in (client, server):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
