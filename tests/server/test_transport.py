"""The pass-flushing TCP transport (``channels.server.transport``) on real sockets.

Each test runs its own (not installed) asyncio reactor on a fresh event loop, a Twisted port
on 127.0.0.1:0 with the transport under test, and an asyncio client in the same loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any, NamedTuple

import pytest
from twisted.internet import error, protocol, tcp
from twisted.internet.asyncioreactor import AsyncioSelectorReactor

from channels.server.transport import PassFlushingServer, use_pass_flushing

BOUND = 10  # seconds any single wait in these tests may take


class Served(NamedTuple):
    port: Any
    number: int
    protocols: list
    reactor: Any


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


@contextlib.asynccontextmanager
async def served(on_data: Callable[[Recorder, bytes], None]) -> AsyncIterator[Served]:
    """A port on 127.0.0.1 building pass-flushing connections, stopped on the way out."""
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
    try:
        yield Served(port, port.getHost().port, protocols, reactor)
    finally:
        stopped = port.stopListening()
        if stopped is not None:
            await stopped.asFuture(asyncio.get_running_loop())


async def until(condition: Callable[[], bool]) -> None:
    """Let the loop run until ``condition()`` holds (bounded)."""
    async with asyncio.timeout(BOUND):
        while not condition():
            await asyncio.sleep(0.001)


def run(coroutine: Any) -> Any:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(coroutine, BOUND * 3))
    finally:
        loop.close()


def test_listening_tcp_ports_build_pass_flushing_connections_and_others_keep_their_own() -> None:
    async def check() -> None:
        async with served(lambda proto, data: None) as server:
            assert server.port.transport is PassFlushingServer
            reader, writer = await asyncio.open_connection("127.0.0.1", server.number)
            await until(lambda: server.protocols)
            assert type(server.protocols[0].transport) is PassFlushingServer
            writer.close()

        class OtherPort(tcp.Port):  # a port kind with a transport class of its own
            transport = tcp.Server

        other = OtherPort(0, protocol.Factory(), reactor=server.reactor)
        use_pass_flushing(other)
        assert other.transport is tcp.Server

    run(check())


def test_writes_of_one_pass_leave_together_without_watching_for_writability() -> None:
    watched: list[bool] = []
    expected = b"head;body;end;more"

    def answer(proto: Recorder, data: bytes) -> None:
        transport = proto.transport
        for part in (b"head;", b"body;", b"end"):
            transport.write(part)
        transport.writeSequence([b";", b"more"])
        # Still in the pass that wrote: nothing sent yet, nothing registered with the reactor.
        watched.append(transport in transport.reactor.getWriters())
        assert transport._tempDataLen == len(expected)

    async def check() -> None:
        async with served(answer) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.number)
            writer.write(b"go")
            received = b""
            async with asyncio.timeout(BOUND):
                while len(received) < len(expected):
                    received += await reader.read(100)
            assert received == expected
            transport = server.protocols[0].transport
            assert watched == [False]
            assert transport not in server.reactor.getWriters()
            assert transport._tempDataLen == 0 and transport.dataBuffer == b""
            writer.close()
            await asyncio.wait_for(server.protocols[0].lost, BOUND)

    run(check())


def test_a_write_bigger_than_the_kernel_buffers_reaches_a_slow_reader_whole() -> None:
    payload = os.urandom(24 * 1024 * 1024)

    async def check() -> None:
        async with served(lambda proto, data: proto.transport.write(payload)) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.number,
                                                           limit=1024 * 1024)
            writer.write(b"go")
            await until(lambda: server.protocols and server.protocols[0].transport
                        ._watching_writes)
            # The client has not read: the kernel took part, the rest waits for writability.
            transport = server.protocols[0].transport
            assert transport in server.reactor.getWriters()
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
            assert transport not in server.reactor.getWriters()
            writer.close()
            await asyncio.wait_for(server.protocols[0].lost, BOUND)

    run(check())


def test_lose_connection_after_a_write_sends_everything_then_closes() -> None:
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    def answer_and_close(proto: Recorder, data: bytes) -> None:
        proto.transport.write(response)
        proto.transport.loseConnection()

    async def check() -> None:
        async with served(answer_and_close) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.number)
            writer.write(b"GET / HTTP/1.1\r\n\r\n")
            assert await asyncio.wait_for(reader.read(), BOUND) == response  # read to EOF
            reason = await asyncio.wait_for(server.protocols[0].lost, BOUND)
            assert reason.check(error.ConnectionDone)
            assert server.protocols[0].transport not in server.reactor.getReaders()
            writer.close()

    run(check())


def test_abort_after_a_write_drops_the_connection_without_sending() -> None:
    watched: list[Any] = []

    def answer_and_abort(proto: Recorder, data: bytes) -> None:
        reactor = proto.transport.reactor
        watch = reactor.addWriter
        reactor.addWriter = lambda writer: (watched.append(writer), watch(writer))
        proto.transport.write(b"never sent")
        proto.transport.abortConnection()

    async def check() -> None:
        async with served(answer_and_abort) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.number)
            writer.write(b"go")
            reason = await asyncio.wait_for(server.protocols[0].lost, BOUND)
            assert reason.check(error.ConnectionAborted)
            try:
                received = await asyncio.wait_for(reader.read(), BOUND)
            except ConnectionResetError:
                received = b""
            assert received == b""
            assert watched == []  # the aborted socket was never handed to the poller
            writer.close()

    run(check())


def test_a_connection_closed_as_the_reactor_shuts_down_is_still_torn_down() -> None:
    """write() + loseConnection() in the pass where the reactor's shutdown runs: the loop stops
    before a queued flush could run, so the connection must be one the reactor knows of, and
    be told connectionLost and closed, as on Twisted's own transport."""
    loop = asyncio.new_event_loop()
    reactor = AsyncioSelectorReactor(loop)
    lost: list[Any] = []
    protocols: list[protocol.Protocol] = []

    class Closing(protocol.Protocol):
        def connectionLost(self, reason: Any) -> None:
            lost.append(reason)

    class Factory(protocol.Factory):
        def buildProtocol(self, addr: Any) -> Closing:
            built = Closing()
            protocols.append(built)
            return built

    def goodbye() -> None:
        for built in protocols:
            built.transport.write(b"bye")
            built.transport.loseConnection()

    port = tcp.Port(0, Factory(), interface="127.0.0.1", reactor=reactor)
    use_pass_flushing(port)
    port.startListening()
    client = socket.create_connection(("127.0.0.1", port.getHost().port), timeout=BOUND)
    try:
        def stop_once_connected() -> None:
            if protocols:
                reactor.stop()
            else:
                reactor.callLater(0.01, stop_once_connected)

        reactor.addSystemEventTrigger("before", "shutdown", goodbye)
        reactor.callLater(0, stop_once_connected)
        reactor.callLater(BOUND, reactor.stop)  # bound: never hang the suite
        reactor.run(installSignalHandlers=False)
        assert len(lost) == 1
        client.recv(100)  # whatever was written, then end of stream: no timeout
        assert client.recv(100) == b""
    finally:
        client.close()
        loop.close()


def test_a_write_to_a_peer_that_reset_the_connection_reports_it_lost() -> None:
    """The send fails (EPIPE/ECONNRESET) inside the flush: the protocol hears connectionLost."""
    async def check() -> None:
        async with served(lambda proto, data: None) as server:
            client = socket.create_connection(("127.0.0.1", server.number))
            await until(lambda: server.protocols)
            lost = server.protocols[0].lost
            server_side = server.protocols[0].transport
            server_side.stopReading()  # so the reset is found by the write, not by a read
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()  # RST
            # Keep writing until the kernel reports the reset to a send (the first send after
            # an RST may still succeed on some kernels).
            async with asyncio.timeout(BOUND):
                while not lost.done():
                    server_side.write(b"x" * 1024)
                    await asyncio.sleep(0.001)
            assert lost.result().check(error.ConnectionLost, error.ConnectionDone)

    run(check())


@pytest.mark.parametrize("pieces", [1, 50])
def test_many_connections_each_get_their_own_bytes(pieces: int) -> None:
    def echo_in_pieces(proto: Recorder, data: bytes) -> None:
        step = max(1, len(data) // pieces)
        for start in range(0, len(data), step):
            proto.transport.write(data[start:start + step])

    async def check() -> None:
        async with served(echo_in_pieces) as server:
            async def one(n: int) -> bool:
                reader, writer = await asyncio.open_connection("127.0.0.1", server.number)
                message = (f"client {n}:" * 200).encode()
                writer.write(message)
                received = await asyncio.wait_for(reader.readexactly(len(message)), BOUND)
                writer.close()
                return received == message

            assert all(await asyncio.gather(*(one(n) for n in range(40))))

    run(check())
