"""Byte-level HTTP and WebSocket clients for inputs real client libraries refuse to send."""

from __future__ import annotations

import base64
import os
import socket
import struct

TIMEOUT = 5


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    return sock


def read_response(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection (bounded by the socket timeout)."""
    chunks = []
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    except (ConnectionResetError, TimeoutError):
        pass
    return b"".join(chunks)


def exchange(port: int, request: bytes) -> bytes:
    with connect(port) as sock:
        sock.sendall(request)
        return read_response(sock)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


class Buffered:
    """A socket plus the bytes read past what the caller has consumed so far."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def take(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the server")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def read_head(self) -> bytes:
        """An HTTP response head (status line and headers)."""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the server")
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        return head

    def read_frame(self) -> tuple[int, bytes]:
        """One unmasked server frame: (opcode, payload)."""
        first, second = self.take(2)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self.take(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self.take(8))[0]
        return first & 0x0F, self.take(length)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()


def open_websocket(port: int, path: str = "/", extra: bytes = b"",
                   early: bytes = b"") -> tuple[Buffered, bytes]:
    """Raw handshake (plus ``early`` bytes sent before any answer); returns (conn, head)."""
    conn = Buffered(connect(port))
    conn.send(handshake_request(path, extra) + early)
    return conn, conn.read_head()


def handshake_request(path: str = "/", extra: bytes = b"") -> bytes:
    key = base64.b64encode(os.urandom(16))
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n").encode() + \
        b"Sec-WebSocket-Key: " + key + b"\r\n" + extra + b"\r\n"


def frame(payload: bytes, opcode: int = 0x1, fin: bool = True) -> bytes:
    """A masked client frame (RFC 6455 §5.2)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    length = len(payload)
    if length < 126:
        head += bytes([0x80 | length])
    elif length < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", length)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", length)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
