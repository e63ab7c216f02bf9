"""The example project's sockets and commands, live (channels-server and runworker on Redis),
spoken to directly: what its pages never send, and who may do what.

The browser tests (tests/browser/) show the pages working; these show the server side holding
up against anything else a client or an operator might send.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.browser.stack import MANAGE, ExampleStack, example_env
from tests.core.processes import ROOT

TIMEOUT = 10
#: How long a socket must stay quiet to show that nothing was sent to it.
QUIET = 0.5
PASSWORD = "channels-demo"


@pytest.fixture(scope="module")
def example(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleStack]:
    stack = ExampleStack(tmp_path_factory.mktemp("example") / "db.sqlite3", redis_url,
                         prefix=f"example-{uuid.uuid4().hex[:12]}:", workers=1)
    try:
        stack.start()
        yield stack
    finally:
        stack.close()


@pytest.fixture(scope="module")
def sessions(example: ExampleStack) -> dict[str, str]:
    """The session cookie of each demo user, logged in through the login form."""
    keys = {}
    for username in ("alice", "bob", "admin"):
        session = requests.Session()
        form = session.get(f"{example.base_url}/login/", timeout=TIMEOUT)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        login = session.post(f"{example.base_url}/login/", timeout=TIMEOUT, allow_redirects=False,
                             data={"csrfmiddlewaretoken": token, "username": username,
                                   "password": PASSWORD})
        assert login.status_code == 302, login.text
        keys[username] = session.cookies["sessionid"]
    return keys


def socket(example: ExampleStack, path: str, session_key: str | None = None,
           origin: str | None = None) -> ClientConnection:
    headers = {"Origin": origin or example.base_url}
    if session_key:
        headers["Cookie"] = f"sessionid={session_key}"
    return connect(f"ws://127.0.0.1:{example.port}{path}", additional_headers=headers,
                   open_timeout=TIMEOUT)


def next_payload(ws: ClientConnection, stream: str) -> dict:
    frame = json.loads(ws.recv(timeout=TIMEOUT))
    assert frame["stream"] == stream, frame
    return frame["payload"]


def next_event(ws: ClientConnection, skip: tuple[str, ...] = ("joined", "left")) -> dict:
    """The next chat event that is not a join or leave notice (unless asked for)."""
    while True:
        payload = next_payload(ws, "chat")
        if payload["event"] not in skip:
            return payload


def assert_quiet(ws: ClientConnection, skip: tuple[str, ...] = ("joined", "left")) -> None:
    with pytest.raises(TimeoutError):
        while True:
            payload = json.loads(ws.recv(timeout=QUIET))["payload"]
            if payload.get("event") not in skip:
                pytest.fail(f"unexpected frame {payload}")


def send(ws: ClientConnection, stream: str, payload: object) -> None:
    ws.send(json.dumps({"stream": stream, "payload": payload}))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("path", ["/ws/chat/lobby/", "/ws/dashboard/"])
def test_sockets_refuse_anonymous_users_and_other_sites(example, sessions, path):
    with pytest.raises(InvalidStatus) as anonymous:
        socket(example, path)
    assert anonymous.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as cross_site:
        socket(example, path, sessions["alice"], origin="http://evil.example.org")
    assert cross_site.value.response.status_code == 403
    with socket(example, path, sessions["alice"]):
        pass  # the same user from the site itself gets in


@pytest.mark.timeout(30)
def test_a_chat_message_reaches_the_room_with_its_author(example, sessions):
    room = f"/ws/chat/r{uuid.uuid4().hex[:8]}/"
    with socket(example, room, sessions["alice"]) as alice, \
            socket(example, room, sessions["bob"]) as bob:
        joined = next_event(alice, skip=())
        assert (joined["event"], joined["user"]) == ("joined", "alice")
        send(alice, "chat", {"text": "  hello  "})
        for ws in (alice, bob):
            message = next_event(ws)
            assert (message["event"], message["user"], message["text"]) == (
                "message", "alice", "hello")
        bob.close()
        left = next_event(alice, skip=("joined",))
        assert (left["event"], left["user"]) == ("left", "bob")


@pytest.mark.timeout(30)
def test_bad_chat_frames_get_an_error_and_the_socket_keeps_working(example, sessions):
    room = f"/ws/chat/r{uuid.uuid4().hex[:8]}/"
    with socket(example, room, sessions["alice"]) as alice, \
            socket(example, room, sessions["bob"]) as bob:
        for payload in ({}, {"text": "   "}, {"text": 42}, {"text": "x" * 1001}):
            send(alice, "chat", payload)
            error = next_event(alice)
            assert error["event"] == "error" and error["error"], (payload, error)
        assert_quiet(bob)  # nothing of it reached the room
        # Frames the demultiplexer cannot route are dropped (the worker logs why).
        alice.send("not json")
        send(alice, "nosuchstream", {"text": "lost"})
        send(alice, "chat", {"text": "after all that"})
        for ws in (alice, bob):
            assert next_event(ws)["text"] == "after all that"
    assert all(worker.popen.poll() is None for worker in example.workers)


@pytest.mark.timeout(30)
def test_the_dashboard_binding_checks_permissions_and_data(example, sessions):
    with socket(example, "/ws/dashboard/", sessions["alice"]) as alice, \
            socket(example, "/ws/dashboard/", sessions["admin"]) as admin:
        send(alice, "items", {"action": "create", "data": {"name": "socket-made", "value": "5"}})
        created = next_payload(admin, "items")
        assert created["action"] == "create"
        assert created["data"]["name"] == "socket-made" and created["data"]["value"] == 5
        assert next_payload(alice, "items") == created
        pk = created["pk"]

        refusals = [
            ({"action": "delete", "pk": pk}, "permission_denied"),  # only staff may delete
            ({"action": "update", "pk": pk, "data": {"value": "five"}}, "invalid_data"),
            ({"action": "update", "pk": pk, "data": {"colour": "red"}}, "invalid_data"),
            ({"action": "update", "pk": 10**9, "data": {"value": 1}}, "not_found"),
            ({"action": "rename", "pk": pk}, "unknown_action"),
        ]
        for request, code in refusals:
            send(alice, "items", request)
            assert next_payload(alice, "items")["error"] == code, request
        # updated_at is sent but not writable: a client cannot backdate a change.
        send(alice, "items", {"action": "update", "pk": pk,
                              "data": {"value": 6, "updated_at": "2000-01-01T00:00:00Z"}})
        updated = next_payload(admin, "items")
        assert updated["data"]["value"] == 6
        assert not updated["data"]["updated_at"].startswith("2000")
        assert next_payload(alice, "items") == updated

        send(admin, "items", {"action": "delete", "pk": pk})
        for ws in (alice, admin):
            assert next_payload(ws, "items")["action"] == "delete"


@pytest.mark.timeout(30)
def test_setitem_refuses_bad_values_and_changes_nothing(example, sessions):
    with socket(example, "/ws/dashboard/", sessions["bob"]) as bob:
        refused = subprocess.run([sys.executable, MANAGE, "setitem", "visitors", "99999999"],
                                 env=example.env, cwd=ROOT, capture_output=True, text=True,
                                 timeout=60)
        assert refused.returncode == 1
        assert "less than or equal to 1000000" in refused.stderr
        example.manage("setitem", "visitors", "7")
        event = next_payload(bob, "items")  # the first event is the good change, not the bad
        assert (event["action"], event["data"]["name"], event["data"]["value"]) == (
            "update", "visitors", 7)


@pytest.mark.timeout(30)
def test_room_names_from_the_form_become_room_urls(example, sessions):
    cookies = {"sessionid": sessions["alice"]}
    opened = requests.get(f"{example.base_url}/chat/", params={"name": "Team Standup!"},
                          cookies=cookies, allow_redirects=False, timeout=TIMEOUT)
    assert (opened.status_code, opened.headers["Location"]) == (302, "/chat/team-standup/")
    nonsense = requests.get(f"{example.base_url}/chat/", params={"name": "!!!"},
                            cookies=cookies, allow_redirects=False, timeout=TIMEOUT)
    assert (nonsense.status_code, nonsense.headers["Location"]) == (302, "/")
    page = requests.get(f"{example.base_url}/chat/team-standup/", cookies=cookies,
                        timeout=TIMEOUT)
    assert page.status_code == 200
    index = requests.get(f"{example.base_url}/", timeout=TIMEOUT)
    assert 'href="/chat/team-standup/"' in index.text


@pytest.mark.timeout(30)
def test_demo_users_are_made_only_when_asked_for(tmp_path):
    def users_after_migrate(demo: str) -> list[str]:
        db_path = tmp_path / f"demo-{demo}.sqlite3"
        env = dict(example_env(db_path, "redis://unused", "unused:"), EXAMPLE_DEMO_USERS=demo)
        env.pop("REDIS_URL")
        subprocess.run([sys.executable, MANAGE, "migrate", "-v", "0"], env=env, cwd=ROOT,
                       check=True, timeout=60)
        listed = subprocess.run(
            [sys.executable, MANAGE, "shell", "-c",
             "from django.contrib.auth.models import User; "
             "print(sorted((u.username, u.is_staff) for u in User.objects.all()))"],
            env=env, cwd=ROOT, check=True, capture_output=True, text=True, timeout=60)
        return listed.stdout.strip().splitlines()[-1]  # after Django 5.2's shell banner

    assert users_after_migrate("1") == "[('admin', True), ('alice', False), ('bob', False)]"
    assert users_after_migrate("0") == "[]"
