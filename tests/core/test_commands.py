"""runworker / runserver: in-process checks and real subprocesses on real sockets."""

from __future__ import annotations

import gc
import json
import time
import uuid

import pytest
import requests
from django.core.management import CommandError, call_command
from websockets.sync.client import connect

from channels.asgi import ChannelLayerWrapper

from .processes import Process, channels_server, django_command, free_port, migrate, project_env

WAIT = 15


def test_runworker_refuses_the_in_memory_layer(layer):
    with pytest.raises(CommandError, match="in-memory layer cannot be used across processes"):
        call_command("runworker")


def test_runworker_rejects_unknown_layer_alias():
    with pytest.raises(CommandError, match="No channel layer named 'nope'"):
        call_command("runworker", layer="nope")


def test_runworker_rejects_zero_threads(layer):
    with pytest.raises(CommandError, match="--threads"):
        call_command("runworker", threads=0)


def test_runworker_freezes_start_up_objects_out_of_gc():
    """Full collections must not walk Django's start-up objects (a 40-60 ms worker stall)."""
    from channels.management.commands.runworker import freeze_startup_objects

    gc.unfreeze()  # in case something in this test process froze already
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()


def test_runserver_log_lines(capsys):
    from channels.management.commands.runserver import Command

    command = Command(no_color=True)
    command.log_action("http", "complete", {"method": "GET", "path": "/x/", "status": 404,
                                            "time_taken": 0.0123, "client": "1.2.3.4:5"})
    command.log_action("websocket", "connecting", {"path": "/ws/", "client": "1.2.3.4:5"})
    command.log_action("websocket", "rejected", {"path": "/ws/", "client": "1.2.3.4:5"})
    command.log_action("websocket", "unknown", {"path": "/ws/", "client": "1.2.3.4:5"})
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3
    assert lines[0].endswith("] HTTP GET /x/ 404 [0.01, 1.2.3.4:5]")
    assert lines[1].endswith("] WebSocket HANDSHAKING /ws/ [1.2.3.4:5]")
    assert lines[2].endswith("] WebSocket REJECT /ws/ [1.2.3.4:5]")


def ws_echo(url: str) -> str:
    with connect(url, open_timeout=WAIT, close_timeout=2) as websocket:
        websocket.send("ping")
        return websocket.recv(timeout=WAIT)


def test_runserver_serves_views_static_files_and_websockets(tmp_path):
    env = project_env(tmp_path / "db.sqlite3", CORE_TEST_DEBUG="1")
    migrate(env)
    server = Process(django_command("runserver", "127.0.0.1:0", "--noreload"), env)
    try:
        port = server.wait_for(r"Starting development server at http://127\.0\.0\.1:(\d+)/",
                               timeout=WAIT).group(1)
        server.wait_for(rf"WebSocket URL: ws://127\.0\.0\.1:{port}/")
        base = f"http://127.0.0.1:{port}"
        response = requests.get(f"{base}/hello/", timeout=WAIT)
        assert (response.status_code, response.text) == (200, "Hello, world")
        # Sessions through the database and the cookie, across two requests.
        session = requests.Session()
        assert session.get(f"{base}/counter/", timeout=WAIT).json() == {"count": 1}
        assert session.get(f"{base}/counter/", timeout=WAIT).json() == {"count": 2}
        static = requests.get(f"{base}/static/core-test.css", timeout=WAIT)
        assert static.status_code == 200 and "teal" in static.text
        assert requests.get(f"{base}/missing/", timeout=WAIT).status_code == 404
        assert ws_echo(f"ws://127.0.0.1:{port}/echo/") == "echo:ping"
        server.wait_for(r"HTTP GET /hello/ 200 \[\d+\.\d\d, 127\.0\.0\.1:\d+\]")
        server.wait_for(r"WebSocket CONNECT /echo/ \[127\.0\.0\.1:\d+\]")
    finally:
        server.kill()


def test_runserver_noworker_leaves_messages_to_others(tmp_path):
    """With --noworker nobody consumes http.request, so the server times out with a 503."""
    env = project_env(tmp_path / "db.sqlite3")
    server = Process(django_command("runserver", "127.0.0.1:0", "--noreload", "--noworker",
                                    "--http_timeout", "1", "--skip-checks"), env)
    try:
        port = server.wait_for(r"development server at http://127\.0\.0\.1:(\d+)/").group(1)
        server.wait_for(r"--noworker with the in-memory layer")
        response = requests.get(f"http://127.0.0.1:{port}/hello/", timeout=WAIT)
        assert response.status_code == 503
    finally:
        server.kill()


def test_runserver_nothreading_runs_one_worker_thread(tmp_path):
    env = project_env(tmp_path / "db.sqlite3")
    server = Process(django_command("runserver", "127.0.0.1:0", "--noreload", "--nothreading",
                                    "--skip-checks"), env)
    try:
        port = server.wait_for(r"development server at http://127\.0\.0\.1:(\d+)/").group(1)
        assert requests.get(f"http://127.0.0.1:{port}/hello/", timeout=WAIT).status_code == 200
        assert server.output().count("Listening on channels") == 1
    finally:
        server.kill()


def test_runserver_noasgi_runs_djangos_wsgi_server(tmp_path):
    env = project_env(tmp_path / "db.sqlite3")
    port = free_port()
    server = Process(django_command("runserver", f"127.0.0.1:{port}", "--noreload", "--noasgi",
                                    "--skip-checks"), env)
    try:
        server.wait_for(rf"development server at http://127\.0\.0\.1:{port}/")
        response = requests.get(f"http://127.0.0.1:{port}/hello/", timeout=WAIT)
        assert response.text == "Hello, world"
        assert "WSGIServer" in response.headers.get("Server", "")
    finally:
        server.kill()


@pytest.fixture
def redis_env(tmp_path, redis_url):
    from channels.layers.redis import RedisChannelLayer

    prefix = f"core-{uuid.uuid4().hex[:10]}:"
    env = project_env(tmp_path / "db.sqlite3", redis_url=redis_url, prefix=prefix)
    layer = RedisChannelLayer(hosts=[redis_url], prefix=prefix)
    try:
        yield env, ChannelLayerWrapper(layer, "default", [])
    finally:
        layer.flush()
        layer.close()


def receive_on(layer, channel, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        name, content = layer.receive([channel], block=True)
        if name is not None:
            return content
    raise AssertionError(f"nothing on {channel} within {timeout}s")


def test_channels_server_with_two_runworker_processes_on_redis(redis_env):
    env, layer = redis_env
    migrate(env)
    workers = [Process(django_command("runworker"), env) for _ in range(2)]
    port = free_port()
    server = Process(channels_server("tests.core.project.asgi:channel_layer", "-b", "127.0.0.1",
                                     "-p", str(port)), env)
    try:
        for worker in workers:
            worker.wait_for(r"Listening on channels .*http\.request", timeout=WAIT)
        pids = set()
        deadline = time.monotonic() + WAIT
        while len(pids) < 2 and time.monotonic() < deadline:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/pid/", timeout=WAIT)
            except requests.ConnectionError:
                time.sleep(0.1)  # the server is still starting to listen; nothing to await on
                continue
            assert response.status_code == 200
            pids.add(response.json()["pid"])
        assert pids == {worker.popen.pid for worker in workers}
        assert ws_echo(f"ws://127.0.0.1:{port}/echo/") == "echo:ping"
    finally:
        server.kill()
        for worker in workers:
            worker.kill()


def test_sigterm_lets_a_busy_worker_finish_its_message(redis_env):
    env, layer = redis_env
    worker = Process(django_command("runworker", "--only-channels", "core.*"), env)
    try:
        worker.wait_for(r"Listening on channels core\.slow", timeout=WAIT)
        layer.send("core.slow", {"seconds": 1.0, "reply": "core.reply"})
        layer.send("core.slow", {"seconds": 0, "reply": "core.reply", "second": True})
        started = receive_on(layer, "core.reply")
        assert started == {"event": "started", "pid": worker.popen.pid}
        worker.signal()
        assert receive_on(layer, "core.reply") == {"event": "done", "pid": worker.popen.pid}
        assert worker.wait(WAIT) == 0
        # The second message was left for another worker.
        channel, content = layer.receive(["core.slow"])
        assert channel == "core.slow" and content.get("second") is True
        assert layer.receive(["core.reply"]) == (None, None)
    finally:
        worker.kill()


def test_sigterm_lets_busy_worker_threads_finish(redis_env):
    env, layer = redis_env
    worker = Process(django_command("runworker", "--threads", "2", "--only-channels", "core.*"),
                     env)
    try:
        worker.wait_for(r"Listening on channels core\.slow", timeout=WAIT)
        layer.send("core.slow", {"seconds": 1.0, "reply": "core.reply"})
        assert receive_on(layer, "core.reply")["event"] == "started"
        worker.signal()
        assert receive_on(layer, "core.reply")["event"] == "done"
        assert worker.wait(WAIT) == 0
    finally:
        worker.kill()


def test_sigterm_stops_an_idle_worker_quickly(redis_env):
    env, _ = redis_env
    worker = Process(django_command("runworker"), env)
    try:
        worker.wait_for(r"Listening on channels", timeout=WAIT)
        began = time.monotonic()
        worker.signal()
        assert worker.wait(WAIT) == 0
        assert time.monotonic() - began < 8
        assert json.dumps(worker.output()).count("Traceback") == 0
    finally:
        worker.kill()


def test_runserver_autoreloads_on_code_change(tmp_path):
    watched = tmp_path / "watched_core_module.py"
    watched.write_text("VALUE = 1\n")
    env = project_env(tmp_path / "db.sqlite3", CORE_TEST_WATCHED_MODULE="watched_core_module")
    env["PYTHONPATH"] = f"{tmp_path}:{env['PYTHONPATH']}"
    server = Process(django_command("runserver", "127.0.0.1:0", "--skip-checks"), env)
    try:
        port = server.wait_for(r"development server at http://127\.0\.0\.1:(\d+)/",
                               timeout=WAIT).group(1)
        assert requests.get(f"http://127.0.0.1:{port}/hello/", timeout=WAIT).status_code == 200
        lines_before = len(server.lines)
        # The reloader restarts the process: a second banner (port 0 picks a new port). Its
        # watcher takes its first snapshot on its own schedule, so a single early write can be
        # missed under load: write a new value each second until the restart shows (bounded).
        pattern = r"development server at http://127\.0\.0\.1:(\d+)/"
        new_port = None
        for value in range(2, 2 + int(WAIT)):
            watched.write_text(f"VALUE = {value}\n")
            try:
                new_port = server.wait_for(pattern, timeout=1.0, after=lines_before).group(1)
                break
            except AssertionError:
                continue
        assert new_port is not None, f"no restart after an edit:\n{server.output()}"
        response = requests.get(f"http://127.0.0.1:{new_port}/hello/", timeout=WAIT)
        assert response.text == "Hello, world"
    finally:
        server.kill()
