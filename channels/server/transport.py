"""A TCP transport that writes at the end of the current pass of the event loop.

Twisted's TCP transport never writes from ``write()``: it asks the reactor to watch the socket
for writability and sends on the next pass, when the poll reports it writable (it nearly always
is), then stops watching again. On the asyncio reactor that is two ``epoll_ctl`` system calls
and a dispatch through the reactor's logging context per response or frame — about a fifth of
the server's CPU under WebSocket echo load, and the same again to close a connection.

:class:`PassFlushingServer` sends in a callback queued on the loop instead: everything written
during one pass (an HTTP response's head and body and end marker, or several WebSocket frames)
still leaves in one ``send``, and the reactor watches the socket only when the kernel buffer is
full, which is exactly when watching is needed. Nothing else changes: buffering, producers,
half-close and ``loseConnection`` run Twisted's own code (``doWrite``), only triggered sooner.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from twisted.internet import tcp

logger = logging.getLogger("channels.server.transport")


class PassFlushingServer(tcp.Server):
    """Server-side TCP connection that flushes its buffer at the end of the loop pass."""

    _flush_queued = False
    _watching_writes = False
    _loop: asyncio.AbstractEventLoop | None = None

    def startWriting(self) -> None:
        if self._flush_queued or self._watching_writes:
            return
        if self.reactor._stopped and self.reactor._startedBefore:
            # Shutting down: the loop may stop before a queued flush runs, and the reactor's
            # disconnectAll() only reaches what it watches. Watched, the connection is told
            # connectionLost and its socket closed, as on Twisted's own transport.
            self._watch_writes()
            return
        loop = self._loop
        if loop is None:
            try:
                # Kept: on Python 3.11 every get_running_loop() is a getpid() system call.
                loop = self._loop = asyncio.get_running_loop()
            except RuntimeError:  # not driven by an asyncio loop: Twisted's own way
                self._watch_writes()
                return
        self._flush_queued = True
        loop.call_soon(self._flush)

    def stopWriting(self) -> None:
        if self._watching_writes:
            self._watching_writes = False
            super().stopWriting()

    def _watch_writes(self) -> None:
        self._watching_writes = True
        super().startWriting()

    def _flush(self) -> None:
        self._flush_queued = False
        if self.disconnected or self._aborting or self._watching_writes:
            return  # gone or going (abortConnection), or the reactor is already on it
        try:
            why = self.doWrite()
        except Exception as exc:  # noqa: BLE001 - as the reactor treats a failing doWrite
            logger.exception("Writing to %s failed", self.logstr)
            why = exc
        if why:
            # What the reactor does with doWrite's verdict: CONNECTION_DONE after a
            # loseConnection() that flushed everything, CONNECTION_LOST when the peer is gone.
            self.reactor._disconnectSelectable(self, why, False)
        elif len(self.dataBuffer) > self.offset or (self._tempDataLen
                                                    and not self._flush_queued):
            # The kernel took only part of it: now it is worth watching for writability. (Data
            # a resumed producer wrote meanwhile has queued a flush of its own.)
            self._watch_writes()


def use_pass_flushing(port: Any) -> None:
    """Make a listening TCP port build :class:`PassFlushingServer` connections.

    TCP ports only (TLS endpoints are TCP ports too: the TLS protocol writes its records
    through this transport). Other kinds, UNIX sockets and ports of other classes, keep
    Twisted's transport.
    """
    if type(port) is tcp.Port:
        port.transport = PassFlushingServer
