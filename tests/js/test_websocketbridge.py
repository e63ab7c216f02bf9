"""The JavaScript client (channels/static/channels/js/websocketbridge.js) under Node's test runner.

The Node tests live next to this file (``*.test.js``, ``*.test.mjs``); pytest runs them so the
suite's one command covers them. The live ones talk to a real ``channels-server`` and
``runworker`` on the real Redis, started here; they stop and restart the server through a small
HTTP control endpoint served here, so every process stays owned (and cleaned up) by pytest.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from channels.layers.redis import RedisChannelLayer
from tests.core.processes import Process, channels_server, django_command, free_port, project_env

JS_DIR = Path(__file__).resolve().parent
ROOT = JS_DIR.parents[1]
STATIC_JS = ROOT / "channels" / "static" / "channels" / "js"
NODE = shutil.which("node")
#: Node's own bound on each test; the whole run is bounded by NODE_RUN_TIMEOUT below pytest's.
NODE_TEST_TIMEOUT_MS = 20_000
NODE_RUN_TIMEOUT = 25
START_TIMEOUT = 15

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")


def node_command(*test_files: Path) -> list[str]:
    """``node --test`` for these files, with the WebSocket global Node 20 keeps behind a flag."""
    assert NODE is not None
    probe = subprocess.run([NODE, "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"],
                           capture_output=True, timeout=10)
    flags = [] if probe.returncode == 0 else ["--experimental-websocket"]
    return [NODE, *flags, "--test", "--test-reporter=tap", f"--test-timeout={NODE_TEST_TIMEOUT_MS}",
            *(str(path) for path in test_files)]


def run_node_tests(*test_files: Path, env: dict[str, str] | None = None) -> str:
    """Run the files; fail with Node's whole report if any test fails or the run hangs."""
    popen = subprocess.Popen(node_command(*test_files), cwd=ROOT, env={**os.environ, **(env or {})},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    try:
        output, _ = popen.communicate(timeout=NODE_RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        # The runner starts a process per test file: take the whole group down.
        os.killpg(popen.pid, signal.SIGKILL)
        output, _ = popen.communicate(timeout=10)
        pytest.fail(f"node --test did not finish within {NODE_RUN_TIMEOUT} s:\n{output}",
                    pytrace=False)
    if popen.returncode != 0:
        pytest.fail(f"node --test failed (exit {popen.returncode}):\n{output}", pytrace=False)
    assert "# fail 0" in output, output
    print(output)  # Node's report, shown by pytest -rP
    return output


class RestartableServer:
    """``channels-server`` on one fixed port, which the Node tests may stop and start again."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.env = env
        self.port = port
        self.process: Process | None = None
        self.lock = threading.Lock()

    def start(self) -> None:
        with self.lock:
            if self.process is not None:
                return
            process = Process(channels_server("tests.js.asgi:channel_layer", "-b", "127.0.0.1",
                                              "-p", str(self.port)), self.env)
            try:
                process.wait_for(rf"Listening on 127\.0\.0\.1:{self.port}\b",
                                 timeout=START_TIMEOUT)
            except AssertionError:
                process.kill()
                raise
            self.process = process

    def stop(self, abruptly: bool = False) -> None:
        """SIGTERM (the server closes its WebSockets with 1001) or SIGKILL (they just drop)."""
        with self.lock:
            process, self.process = self.process, None
            if process is None:
                return
            if abruptly:
                process.popen.kill()
            else:
                process.signal(signal.SIGTERM)
            try:
                process.wait(START_TIMEOUT)
            finally:
                process.kill()


def control_endpoint(server: RestartableServer) -> ThreadingHTTPServer:
    """POST /server/stop, /server/kill, /server/start: answered once the server is down/up."""

    actions = {
        "/server/stop": lambda: server.stop(),
        "/server/kill": lambda: server.stop(abruptly=True),
        "/server/start": server.start,
    }

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the name http.server looks up
            action = actions.get(self.path)
            if action is None:
                status, body = 404, f"no action {self.path}"
            else:
                try:
                    action()
                    status, body = 200, "ok"
                except Exception as exc:  # the Node test shows it, with the server's output
                    status, body = 500, f"{type(exc).__name__}: {exc}"
            payload = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@dataclass
class LiveProject:
    http_base: str
    ws_base: str
    control_url: str


@pytest.fixture(scope="module")
def live_project(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveProject]:
    """One runworker and a restartable channels-server on Redis, under a prefix of their own."""
    prefix = f"js-{uuid.uuid4().hex[:12]}:"
    env = project_env(tmp_path_factory.mktemp("js") / "unused.sqlite3",
                      DJANGO_SETTINGS_MODULE="tests.js.settings",
                      JS_TEST_REDIS_URL=redis_url, JS_TEST_PREFIX=prefix)
    worker = Process(django_command("runworker"), env)
    server = RestartableServer(env, free_port())
    control = control_endpoint(server)
    control_thread = threading.Thread(target=control.serve_forever, daemon=True)
    control_thread.start()
    try:
        worker.wait_for(r"Listening on channels .*websocket\.receive", timeout=START_TIMEOUT)
        server.start()
        yield LiveProject(
            http_base=f"http://127.0.0.1:{server.port}",
            ws_base=f"ws://127.0.0.1:{server.port}",
            control_url=f"http://127.0.0.1:{control.server_address[1]}",
        )
    finally:
        control.shutdown()
        control.server_close()
        control_thread.join(5)
        server.stop()
        worker.kill()
        layer = RedisChannelLayer(hosts=[redis_url], prefix=prefix)
        layer.flush()
        layer.close()


@pytest.mark.timeout(30)
def test_bridge_without_a_server() -> None:
    """Loading (classic script, require, ES module), URLs, options, dispatch, reconnect timing."""
    output = run_node_tests(JS_DIR / "bridge_units.test.js", JS_DIR / "bridge_module.test.mjs")
    assert "# pass " in output


@pytest.mark.timeout(30)
def test_bridge_against_a_live_server(live_project: LiveProject) -> None:
    """Round trips, demultiplexing, queued sends, restarts, close(), maxRetries: see the file."""
    output = run_node_tests(JS_DIR / "bridge_live.test.js", env={
        "BRIDGE_WS_BASE": live_project.ws_base,
        "BRIDGE_CONTROL_URL": live_project.control_url,
    })
    assert "# skipped 0" in output, output


@pytest.mark.timeout(30)
def test_the_bridge_files_are_served_as_javascript(live_project: LiveProject) -> None:
    """What a template's {% static %} points at: both entry points, as JavaScript (a browser
    refuses a module script served under any other type)."""
    for name in ("websocketbridge.js", "websocketbridge.mjs"):
        response = requests.get(f"{live_project.http_base}/static/channels/js/{name}", timeout=10)
        assert response.status_code == 200, name
        assert response.content == (STATIC_JS / name).read_bytes()
        assert "javascript" in response.headers["content-type"], response.headers
