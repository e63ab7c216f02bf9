"""End to end: a Channels 1.1-style bound model served by a real ``channels-server`` and two
``runworker`` processes on Redis, changed from other processes, the admin and sockets.

The processes share one SQLite file; ``manage.py bindapp_set --serve`` is the "other process"
that changes values through the ORM with nothing but the channel layer to reach the sockets.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import uuid

import pytest
import requests
import websockets

from channels.layers.redis import RedisChannelLayer
from tests.core.processes import Process, channels_server, django_command, project_env

SETTINGS = "tests.binding.live_settings"
TIMEOUT = 10
#: After the ordering marker arrived, how long a socket must stay quiet. A frame sent before
#: the marker would have arrived before it; this only catches one sent out of order.
QUIET = 0.5

class LiveProject:
    def __init__(self, http_port: int, orm: Process, workers: list[Process]) -> None:
        self.http_url = f"http://127.0.0.1:{http_port}"
        self.ws_url = f"ws://127.0.0.1:{http_port}"
        self.orm = orm
        self.workers = workers
        self._changes = 0

    def set_value(self, name: str, value: int, room: str = "lobby",
                  rollback: bool = False) -> int:
        """Change a value in the other process (``bindapp_set --serve``); returns its pk."""
        lines_before = len(self.orm.lines)
        self.orm.popen.stdin.write(f"{name} {value} {room}{' rollback' if rollback else ''}\n")
        self.orm.popen.stdin.flush()
        self._changes += 1
        done = self.orm.wait_for(rf"^done {self._changes} pk=(\d+)$", timeout=TIMEOUT,
                                 after=lines_before)
        return int(done.group(1))

    def socket(self, room: str = "lobby"):
        return websockets.connect(f"{self.ws_url}/values/{room}/", open_timeout=TIMEOUT)


@pytest.fixture(scope="module")
def live(tmp_path_factory, redis_url):
    """channels-server, two runworker processes and a plain ORM process, on one SQLite file
    and this module's own Redis prefix."""
    prefix = f"binding-{uuid.uuid4().hex[:12]}:"
    env = project_env(tmp_path_factory.mktemp("binding") / "db.sqlite3", redis_url=redis_url,
                      prefix=prefix, DJANGO_SETTINGS_MODULE=SETTINGS)
    processes: list[Process] = []
    try:
        orm = Process(django_command("bindapp_set", "--serve", "--setup"), env,
                      stdin=subprocess.PIPE)
        processes.append(orm)
        orm.wait_for(r"^ready$", timeout=TIMEOUT * 2)  # migrated: the others may start
        for _ in range(2):
            processes.append(Process(django_command("runworker"), env))
        workers = processes[1:]
        server = Process(channels_server("tests.binding.live_asgi:channel_layer",
                                         "-b", "127.0.0.1", "-p", "0"), env)
        processes.append(server)
        port = int(server.wait_for(r"Listening on 127\.0\.0\.1:(\d+)", timeout=TIMEOUT)
                   .group(1))
        for worker in workers:
            worker.wait_for(r"Listening on channels .*websocket\.receive", timeout=TIMEOUT)
        yield LiveProject(port, orm, workers)
    finally:
        for process in processes:
            process.kill()
        layer = RedisChannelLayer(hosts=[redis_url], prefix=prefix)
        layer.flush()
        layer.close()


async def next_frame(socket) -> dict:
    return json.loads(await asyncio.wait_for(socket.recv(), TIMEOUT))


async def assert_quiet(socket) -> None:
    with pytest.raises(TimeoutError):
        frame = await asyncio.wait_for(socket.recv(), QUIET)
        pytest.fail(f"unexpected frame {frame}")


def event(action: str, pk: int, name: str, value: int, room: str = "lobby") -> dict:
    return {"stream": "intval", "payload": {
        "action": action, "pk": pk, "model": "bindapp.integervalue",
        "data": {"name": name, "value": value, "room": room}}}


def test_an_orm_change_in_another_process_reaches_every_bound_socket(live):
    async def scenario():
        async with live.socket() as first, live.socket() as second, \
                live.socket("attic") as attic:
            pk = await asyncio.to_thread(live.set_value, "orm", 11)
            for socket in (first, second):
                assert await next_frame(socket) == event("create", pk, "orm", 11)
            # The other room heard nothing of it: its first frame is a later change of its own.
            marker = await asyncio.to_thread(live.set_value, "attic-marker", 1, "attic")
            assert await next_frame(attic) == event("create", marker, "attic-marker", 1, "attic")
            await assert_quiet(attic)

    asyncio.run(scenario())


def test_a_change_saved_in_the_admin_reaches_the_sockets(live):
    pk = live.set_value("admin-edited", 1)
    session = requests.Session()
    login_page = session.get(f"{live.http_url}/admin/login/", timeout=TIMEOUT)
    assert login_page.status_code == 200
    login = session.post(f"{live.http_url}/admin/login/?next=/admin/", timeout=TIMEOUT,
                         allow_redirects=False, data={
                             "csrfmiddlewaretoken": _csrf_token(login_page.text),
                             "username": "admin", "password": "admin-pw", "next": "/admin/"})
    assert login.status_code == 302, login.text
    change_url = f"{live.http_url}/admin/bindapp/integervalue/{pk}/change/"
    form = session.get(change_url, timeout=TIMEOUT)
    assert form.status_code == 200 and 'name="value"' in form.text

    async def scenario():
        async with live.socket() as first, live.socket() as second:
            saved = await asyncio.to_thread(
                session.post, change_url, timeout=TIMEOUT, allow_redirects=False, data={
                    "csrfmiddlewaretoken": _csrf_token(form.text), "name": "admin-edited",
                    "value": "77", "room": "lobby", "_save": "Save"})
            assert saved.status_code == 302, saved.text
            for socket in (first, second):
                assert await next_frame(socket) == event("update", pk, "admin-edited", 77)

    asyncio.run(scenario())


def test_a_change_sent_from_a_socket_reaches_the_other_sockets(live):
    pk = live.set_value("from-socket", 5)

    async def scenario():
        async with live.socket() as writer, live.socket() as reader:
            # A bad request first: only the writer hears about it, and the workers carry on.
            await writer.send(json.dumps({"stream": "intval", "payload": {
                "action": "update", "pk": pk, "data": {"value": "five"}}}))
            refusal = await next_frame(writer)
            assert refusal["payload"]["error"] == "invalid_data"
            assert refusal["payload"]["request"] == {"action": "update", "pk": pk}
            await writer.send(json.dumps({"stream": "intval", "payload": {
                "action": "update", "pk": pk, "data": {"value": 6}}}))
            for socket in (reader, writer):
                assert await next_frame(socket) == event("update", pk, "from-socket", 6)
            await writer.send(json.dumps({"stream": "intval", "payload": {
                "action": "create", "data": {"name": "made-by-socket", "value": 9}}}))
            created = await next_frame(reader)
            assert created["payload"]["action"] == "create"
            assert created["payload"]["data"] == {"name": "made-by-socket", "value": 9,
                                                  "room": "lobby"}
            assert await next_frame(writer) == created

    asyncio.run(scenario())
    assert all(worker.popen.poll() is None for worker in live.workers)


def test_a_rolled_back_change_in_another_process_sends_nothing(live):
    async def scenario():
        async with live.socket() as first, live.socket() as second:
            await asyncio.to_thread(live.set_value, "rolled-back", 3, rollback=True)
            marker = await asyncio.to_thread(live.set_value, "after-rollback", 4)
            # Had the rolled-back save sent anything, it would have come before the marker.
            for socket in (first, second):
                assert await next_frame(socket) == event("create", marker, "after-rollback", 4)
            for socket in (first, second):
                await assert_quiet(socket)

    asyncio.run(scenario())


def _csrf_token(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
