"""Hostile bytes for a live server: malformed HTTP, abusive WebSocket frames, random noise.

Every generator is deterministic (``random.Random(seed)``), so a failing input can be
reproduced from the seed the test prints.
"""

from __future__ import annotations

import random
import socket
import struct

from tests.server import rawclient

#: Bound on waiting for the server's answer to one hostile input.
ANSWER_TIMEOUT = 5.0

MALFORMED_REQUEST_LINES = [
    b"THIS IS NOT HTTP\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET /\r\n\r\n",
    b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    b"GET / HTTQ/1.1\r\nHost: x\r\n\r\n",
    b"\x00\x01\x02\x03 / HTTP/1.1\r\nHost: x\r\n\r\n",
    b" / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\nHost: x\n\n\n",
    b"\r\n\r\n\r\n\r\n",
    b"GET /a b c d HTTP/1.1\r\nHost: x\r\n\r\n",
]

BAD_CHUNKED = [
    b"POST /body-length/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nbad\r\n",
    b"POST /body-length/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nabc\r\n",
    b"POST /body-length/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3\r\nabcdef\r\n0\r\n\r\n",
    b"POST /body-length/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"ffffffffffffffffffff\r\nab\r\n",
    b"POST /body-length/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
]

INVALID_UTF8 = [
    b"GET /%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /hello/ HTTP/1.1\r\nHost: x\r\nX-Bad: \xff\xfe\xc3\x28\r\n\r\n",
    b"GET /hello/ HTTP/1.1\r\nHost: x\r\nX-\xff\xfe: 1\r\n\r\n",
    b"GET /hello/?q=%ff%fe%00 HTTP/1.1\r\nHost: x\r\n\r\n",
]


def header_flood(count: int) -> bytes:
    return (b"GET /hello/ HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-Flood-%d: %d\r\n" % (n, n) for n in range(count)) + b"\r\n")


def huge_header(size: int) -> bytes:
    return b"GET /hello/ HTTP/1.1\r\nHost: x\r\nX-Huge: " + b"h" * size + b"\r\n\r\n"


def exchange(port: int, data: bytes) -> int | None:
    """Send ``data`` on a new connection; the status of the answer, or None if the server
    closed the connection without one."""
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_TIMEOUT) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused while we were still writing: the answer may be readable
        response = rawclient.read_response(sock)
    try:
        return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/") else None
    except (IndexError, ValueError):
        return None


def random_request(rng: random.Random) -> bytes:
    """A request made wrong in one of several ways: mutated bytes, truncated, duplicated parts,
    or noise."""
    base = rng.choice([
        b"GET /hello/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        b"POST /body-length/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        b"POST /body-length/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n",
        rawclient.handshake_request("/echo/"),
    ])
    data = bytearray(base)
    kind = rng.randrange(5)
    if kind == 0:  # flip bytes
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 1:  # insert noise
        at = rng.randrange(len(data))
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    elif kind == 2:  # repeat a slice
        start = rng.randrange(len(data))
        end = min(len(data), start + rng.randint(1, 40))
        data[start:start] = data[start:end] * rng.randint(2, 50)
    elif kind == 3:  # pure noise
        data = bytearray(rng.randbytes(rng.randint(1, 2048)))
    else:  # noise after a valid head
        data += rng.randbytes(rng.randint(1, 512))
    # Always end the head, so the server must decide now rather than wait for more.
    return bytes(data) + b"\r\n\r\n"


# -- WebSocket frames -------------------------------------------------------------------------

def unmasked_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A client frame without a mask: RFC 6455 §5.1 says the server must fail the connection."""
    length = len(payload)
    if length < 126:
        return bytes([0x80 | opcode, length]) + payload
    return bytes([0x80 | opcode, 126]) + struct.pack("!H", length) + payload


def websocket_close_code(port: int, frames: bytes, path: str = "/echo/") -> int | None:
    """Open a socket on ``path``, send ``frames``, return the code of the server's close frame
    (None if it dropped the connection without one). Echoes are read past."""
    conn, head = rawclient.open_websocket(port, path)
    assert head.startswith(b"HTTP/1.1 101"), head
    try:
        conn.send(frames)
        while True:
            opcode, payload = conn.read_frame()
            if opcode == 0x8:
                return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
    except (ConnectionError, TimeoutError, OSError):
        return None
    finally:
        conn.close()
