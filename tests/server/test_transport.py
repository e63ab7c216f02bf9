"""The pass-flushing TCP transport (``channels.server.transport``) on real sockets.

Each test runs its own (not installed) asyncio reactor on a fresh event loop, a Twisted port
on 127.0.0.1:0 with the transport under test, and an asyncio client in the same loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from typing import Any

import pytest
from twisted.internet import error, protocol, tcp
from twisted.internet.asyncioreactor import AsyncioSelectorReactor

from channels.server.transport import PassFlushingServer, use_pass_flushing

BOUND = 10  # seconds any single wait in these tests may take


class Recorder(protocol.Protocol):
    """Runs ``on_data(self, data)`` for what the client sends; records how the connection ends."""

    def __init__(self, on_data: Callable[[Recorder, bytes], None]) -> None:
        self.on_data = on_data
        self.lost: asyncio.Future = asyncio.get_running_loop().create_future()

    def dataReceived(self, data: bytes) -> None:
        self.on_data(self, data)

    def connectionLost(self, reason: Any) -> None:
        if not self.lost.done():
            self.lost.set_result(reason)


async def serve(on_data: Callable[[Recorder, bytes], None]) -> tuple[Any, list[Recorder], Any]:
    reactor = AsyncioSelectorReactor(asyncio.get_running_loop())
    protocols: list[Recorder] = []

    class Factory(protocol.Factory):
        def buildProtocol(self, addr: Any) -> Recorder:
            built = Recorder(on_data)
            built.factory = self
            protocols.append(built)
            return built

    port = tcp.Port(0, Factory(), interface="127.0.0.1", reactor=reactor)
    use_pass_flushing(port)
    port.startListening()
    return port, protocols, reactor


async def until(condition: Callable[[], bool]) -> None:
    """Let the loop run until ``condition()`` holds (bounded)."""
    async with asyncio.timeout(BOUND):
        while not condition():
            await asyncio.sleep(0.001)


async def stop(port: Any) -> None:
    stopped = port.stopListening()
    if stopped is not None:
        await stopped.asFuture(asyncio.get_running_loop())


def run(coroutine: Any) -> Any:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(coroutine, BOUND * 3))
    finally:
        loop.close()


def test_listening_tcp_ports_build_pass_flushing_connections_and_others_keep_their_own() -> None:
    async def check() -> None:
        port, protocols, reactor = await serve(lambda proto, data: None)
        try:
            assert port.transport is PassFlushingServer
            reader, writer = await asyncio.open_connection("127.0.0.1", port.getHost().port)
            await until(lambda: protocols)
            assert type(protocols[0].transport) is PassFlushingServer
            writer.close()
        finally:
            await stop(port)

        class OtherPort(tcp.Port):  # a port kind with a transport class of its own
            transport = tcp.Server

        other = OtherPort(0, protocol.Factory(), reactor=reactor)
        use_pass_flushing(other)
        assert other.transport is tcp.Server

    run(check())


def test_writes_of_one_pass_leave_together_without_watching_for_writability() -> None:
    watched: list[bool] = []

    def answer(proto: Recorder, data: bytes) -> None:
        transport = proto.transport
        for part in (b"head;", b"body;", b"end"):
            transport.write(part)
        transport.writeSequence([b";", b"more"])
        # Still in the pass that wrote: nothing sent yet, nothing registered with the reactor.
        watched.append(transport in transport.reactor.getWriters())
        assert transport._tempDataLen == len(b"head;body;end;more")

    async def check() -> None:
        port, protocols, reactor = await serve(answer)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port.getHost().port)
            writer.write(b"go")
            received = b""
            async with asyncio.timeout(BOUND):
                while len(received) < len(b"head;body;end;more"):
                    received += await reader.read(100)
            assert received == b"head;body;end;more"
            transport = protocols[0].transport
            assert watched == [False]
            assert transport not in reactor.getWriters()
            assert transport._tempDataLen == 0 and transport.dataBuffer == b""
            writer.close()
            await asyncio.wait_for(protocols[0].lost, BOUND)
        finally:
            await stop(port)

    run(check())


def test_a_write_bigger_than_the_kernel_buffers_reaches_a_slow_reader_whole() -> None:
    payload = os.urandom(24 * 1024 * 1024)

    async def check() -> None:
        port, protocols, reactor = await serve(lambda proto, data: proto.transport.write(payload))
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port.getHost().port,
                                                           limit=1024 * 1024)
            writer.write(b"go")
            await until(lambda: protocols and protocols[0].transport._watching_writes)
            # The client has not read: the kernel took part, the rest waits for writability.
            transport = protocols[0].transport
            assert transport in reactor.getWriters()
            digest, size = hashlib.sha256(), 0
            async with asyncio.timeout(BOUND):
                while size < len(payload):
                    chunk = await reader.read(1024 * 1024)
                    assert chunk, "connection closed early"
                    digest.update(chunk)
                    size += len(chunk)
            assert size == len(payload)
            assert digest.digest() == hashlib.sha256(payload).digest()
            await until(lambda: not transport._watching_writes)
            assert transport not in reactor.getWriters()
            writer.close()
            await asyncio.wait_for(protocols[0].lost, BOUND)
        finally:
            await stop(port)

    run(check())


def test_lose_connection_after_a_write_sends_everything_then_closes() -> None:
    def answer_and_close(proto: Recorder, data: bytes) -> None:
        proto.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        proto.transport.loseConnection()

    async def check() -> None:
        port, protocols, reactor = await serve(answer_and_close)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port.getHost().port)
            writer.write(b"GET / HTTP/1.1\r\n\r\n")
            received = await asyncio.wait_for(reader.read(), BOUND)  # to EOF
            assert received == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            reason = await asyncio.wait_for(protocols[0].lost, BOUND)
            assert reason.check(error.ConnectionDone)
            assert protocols[0].transport not in reactor.getReaders()
            writer.close()
        finally:
            await stop(port)

    run(check())


def test_abort_after_a_write_drops_the_connection_without_sending() -> None:
    def answer_and_abort(proto: Recorder, data: bytes) -> None:
        proto.transport.write(b"never sent")
        proto.transport.abortConnection()

    async def check() -> None:
        port, protocols, reactor = await serve(answer_and_abort)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port.getHost().port)
            writer.write(b"go")
            reason = await asyncio.wait_for(protocols[0].lost, BOUND)
            assert reason.check(error.ConnectionAborted)
            try:
                received = await asyncio.wait_for(reader.read(), BOUND)
            except ConnectionResetError:
                received = b""
            assert received == b""
            writer.close()
        finally:
            await stop(port)

    run(check())


def test_a_write_to_a_peer_that_reset_the_connection_reports_it_lost() -> None:
    """The send fails (EPIPE/ECONNRESET) inside the flush: the protocol hears connectionLost."""
    import socket
    import struct

    async def check() -> None:
        port, protocols, reactor = await serve(lambda proto, data: None)
        try:
            client = socket.create_connection(("127.0.0.1", port.getHost().port))
            await until(lambda: protocols)
            server_side = protocols[0].transport
            server_side.stopReading()  # so the reset is found by the write, not by a read
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()  # RST
            # Keep writing until the kernel reports the reset to a send (the first send after
            # an RST may still succeed on some kernels).
            async with asyncio.timeout(BOUND):
                while not protocols[0].lost.done():
                    server_side.write(b"x" * 1024)
                    await asyncio.sleep(0.001)
            reason = protocols[0].lost.result()
            assert reason.check(error.ConnectionLost, error.ConnectionDone)
        finally:
            await stop(port)

    run(check())


@pytest.mark.parametrize("pieces", [1, 50])
def test_many_connections_each_get_their_own_bytes(pieces: int) -> None:
    def echo_in_pieces(proto: Recorder, data: bytes) -> None:
        step = max(1, len(data) // pieces)
        for start in range(0, len(data), step):
            proto.transport.write(data[start:start + step])

    async def check() -> None:
        port, protocols, reactor = await serve(echo_in_pieces)
        try:
            async def one(n: int) -> bytes:
                reader, writer = await asyncio.open_connection("127.0.0.1", port.getHost().port)
                message = (f"client {n}:" * 200).encode()
                writer.write(message)
                received = await asyncio.wait_for(reader.readexactly(len(message)), BOUND)
                writer.close()
                return received == message

            results = await asyncio.gather(*(one(n) for n in range(40)))
            assert all(results)
        finally:
            await stop(port)

    run(check())
