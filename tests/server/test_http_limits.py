"""Bad HTTP input gets its defined answer, and the server keeps serving everyone else."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from tests.server import rawclient


@pytest.fixture(scope="module")
def limited_server():
    from tests.server.conftest import ServerProcess

    server = ServerProcess(["--max-request-body-size", "100000", "--max-header-size", "4096",
                            "--request-timeout", "1"]).start()
    yield server
    server.stop()


def _still_serves(server) -> None:
    assert requests.get(server.url + "/alive", timeout=5).status_code == 200


@pytest.mark.parametrize("request_bytes", [
    b"THIS IS NOT HTTP\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nbad\r\n",
], ids=["request-line", "header-line", "content-length", "chunk-size"])
def test_malformed_request_is_a_400(limited_server, request_bytes):
    response = rawclient.exchange(limited_server.port, request_bytes)
    assert rawclient.status_of(response) == 400
    _still_serves(limited_server)


def test_path_that_is_not_ascii_is_a_400(limited_server):
    response = rawclient.exchange(limited_server.port,
                                  b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert rawclient.status_of(response) == 400  # Twisted refuses the request line itself
    _still_serves(limited_server)


def test_path_that_decodes_to_invalid_utf8_is_a_400(limited_server):
    response = rawclient.exchange(limited_server.port, b"GET /%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n")
    assert rawclient.status_of(response) == 400
    _still_serves(limited_server)


def test_headers_too_large_is_a_431(limited_server):
    response = requests.get(limited_server.url + "/", headers={"X-Big": "v" * 5000}, timeout=5)
    assert response.status_code == 431
    _still_serves(limited_server)


def test_a_request_too_large_for_the_layer_is_a_431_and_others_still_pass(start_server,
                                                                          backend_env):
    # Within the server's own header limit, but over the layer's message size: the send
    # fails for that request alone, which is answered at once instead of timing out.
    server = start_server([], {**backend_env, "ECHO_MAX_MESSAGE_SIZE": "4000"})
    response = requests.get(server.url + "/", headers={"X-Big": "v" * 6000}, timeout=5)
    assert response.status_code == 431
    _still_serves(server)


def test_too_many_headers_is_a_431(limited_server):
    headers = b"".join(b"X-H%d: 1\r\n" % i for i in range(150))
    response = rawclient.exchange(limited_server.port,
                                  b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert rawclient.status_of(response) == 431


def test_request_line_too_long_is_a_414(limited_server):
    response = rawclient.exchange(limited_server.port,
                                  b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert rawclient.status_of(response) == 414


def test_announced_body_over_the_limit_is_a_413_before_upload(limited_server):
    with rawclient.connect(limited_server.port) as sock:
        sock.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        response = rawclient.read_response(sock)
    assert rawclient.status_of(response) == 413
    assert b"100 Continue" not in response


def test_chunked_body_over_the_limit_is_a_413(limited_server):
    def parts():
        for _ in range(20):
            yield b"z" * 10_000

    try:
        response = requests.post(limited_server.url + "/up", data=parts(), timeout=5)
        assert response.status_code == 413
    except requests.ConnectionError:
        pytest.fail("the 413 answer was lost (connection reset before it could be read)")
    _still_serves(limited_server)


def test_body_at_the_limit_is_accepted(limited_server):
    response = requests.post(limited_server.url + "/up", data=b"a" * 100_000, timeout=5)
    assert response.status_code == 200 and response.json()["body_length"] == 100_000


def test_slow_client_is_timed_out_with_408(limited_server):
    with rawclient.connect(limited_server.port) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n")  # ...and never finishes
        # a slowloris keeps the connection "active" with a byte now and then
        sock.sendall(b"X-A: 1\r\n")
        response = rawclient.read_response(sock)
    assert rawclient.status_of(response) == 408
    assert time.monotonic() - started < 4
    _still_serves(limited_server)


def test_idle_connection_is_closed(limited_server):
    with rawclient.connect(limited_server.port) as sock:
        started = time.monotonic()
        assert sock.recv(10) == b""  # closed by the server, not by our 5 s socket timeout
        assert time.monotonic() - started < 4


def test_server_keeps_serving_while_bad_clients_hang_around(limited_server):
    stuck = [socket.create_connection(("127.0.0.1", limited_server.port)) for _ in range(20)]
    try:
        for sock in stuck:
            sock.sendall(b"GET / HTTP/1.1\r\n")
        for _ in range(5):
            _still_serves(limited_server)
    finally:
        for sock in stuck:
            sock.close()


def test_slow_but_steady_body_is_accepted(limited_server):
    with rawclient.connect(limited_server.port) as sock:
        sock.sendall(b"POST /steady HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n"
                     b"Connection: close\r\n\r\n")
        for byte in b"abcdefgh":  # 8 x 0.3 s: longer than --request-timeout 1, never stalled
            sock.sendall(bytes([byte]))
            time.sleep(0.3)
        response = rawclient.read_response(sock)
    assert rawclient.status_of(response) == 200
    assert b'"body_length": 8' in response


def test_stalled_body_is_timed_out_with_408(limited_server):
    with rawclient.connect(limited_server.port) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /stall HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf")
        response = rawclient.read_response(sock)
    assert rawclient.status_of(response) == 408
    assert time.monotonic() - started < 4
