"""The chat flow against a live interface server and worker process, over real sockets."""

from __future__ import annotations

import asyncio
import json

import pytest
import requests
import websockets

from channels import Group
from channels.test import ChannelLiveServerTestCase

TIMEOUT = 10


async def _recv_json(socket) -> dict:
    return json.loads(await asyncio.wait_for(socket.recv(), TIMEOUT))


@pytest.mark.usefixtures("live_chat")
class LiveChatTests(ChannelLiveServerTestCase):
    settings_module = "tests.consumers.live_settings"
    share_test_databases = False  # the children have their own database file
    migrate = True

    def login(self, username: str, password: str) -> str:
        session = requests.Session()
        signup = session.post(f"{self.live_server_url}/signup/",
                              data={"username": username, "password": password}, timeout=TIMEOUT)
        assert signup.status_code == 201, signup.text
        login = session.post(f"{self.live_server_url}/login/",
                             data={"username": username, "password": password}, timeout=TIMEOUT)
        assert login.status_code == 200, login.text
        assert session.get(f"{self.live_server_url}/whoami/", timeout=TIMEOUT).text == username
        return session.cookies["sessionid"]

    def connect(self, session_key: str | None, origin: str = None):
        headers = {"Origin": origin or self.live_server_url}
        if session_key:
            headers["Cookie"] = f"sessionid={session_key}"
        return websockets.connect(f"{self.live_server_ws_url}/chat/lobby/",
                                  additional_headers=headers, open_timeout=TIMEOUT)

    def test_logged_in_users_chat_over_a_live_server(self):
        alice_key = self.login("alice", "wonderland")
        bob_key = self.login("bob", "builder")

        async def scenario():
            async with self.connect(alice_key) as alice, self.connect(bob_key) as bob:
                assert await _recv_json(alice) == {"hello": "alice", "room": "lobby"}
                assert await _recv_json(bob) == {"hello": "bob", "room": "lobby"}
                await alice.send(json.dumps({"text": "hi bob"}))
                assert await _recv_json(bob) == {"from": "alice", "text": "hi bob"}
                assert await _recv_json(alice) == {"from": "alice", "text": "hi bob"}
                # The test process shares the layer: its group sends reach live sockets.
                await asyncio.to_thread(Group("chat-lobby").send, {"text": json.dumps(
                    {"from": "test"})})
                assert await _recv_json(alice) == {"from": "test"}
                assert await _recv_json(bob) == {"from": "test"}
                await alice.close()
                # Alice's disconnect ran with her user and took her out of the group.
                assert await _recv_json(bob) == {"left": "alice"}

        asyncio.run(scenario())

    def test_cross_origin_and_anonymous_sockets_are_refused(self):
        alice_key = self.login("carol", "secret")

        async def scenario():
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with self.connect(alice_key, origin="http://evil.example.org"):
                    pass
            assert refused.value.response.status_code == 403
            with pytest.raises(websockets.InvalidStatus) as anonymous:
                async with self.connect(None):
                    pass
            assert anonymous.value.response.status_code == 403

        asyncio.run(scenario())


@pytest.mark.usefixtures("live_no_http_route")
class LiveStaticFilesTests(ChannelLiveServerTestCase):
    """``serve_static`` (the default): the worker answers /static/ from the apps' static files
    when the project routes no http.request consumer of its own; other paths go to the views."""

    settings_module = "tests.consumers.live_settings"
    share_test_databases = False
    migrate = True

    def test_static_files_and_views_are_served(self):
        from pathlib import Path

        import channels

        bridge = Path(channels.__file__).parent / "static/channels/js/websocketbridge.js"
        response = requests.get(f"{self.live_server_url}/static/channels/js/websocketbridge.js",
                                timeout=TIMEOUT)
        assert response.status_code == 200
        assert response.content == bridge.read_bytes()
        assert "javascript" in response.headers["content-type"]
        assert requests.get(f"{self.live_server_url}/static/channels/js/nothing.js",
                            timeout=TIMEOUT).status_code == 404
        whoami = requests.get(f"{self.live_server_url}/whoami/", timeout=TIMEOUT)
        assert (whoami.status_code, whoami.text) == (200, "anonymous")


DEFAULT_MODE_SETTINGS = """
from tests.settings import *  # noqa: F403

DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": {db!r},
                          "TEST": {{"NAME": {test_db!r}}}}}}}
_LAYER = {{"hosts": [{redis_url!r}], "prefix": {prefix!r}}}
CHANNEL_LAYERS = {{"default": {{"BACKEND": "channels.layers.redis.RedisChannelLayer",
                               "CONFIG": _LAYER, "TEST_CONFIG": _LAYER,
                               "ROUTING": "tests.consumers.chat.channel_routing"}}}}
ROOT_URLCONF = "tests.consumers.chat"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
"""

DEFAULT_MODE_TEST = """
import asyncio
import json

import requests
import websockets
from django.contrib.auth.models import User

from channels.test import ChannelLiveServerTestCase


class SharedDatabaseTests(ChannelLiveServerTestCase):
    def test_a_user_made_by_the_test_logs_in_and_chats(self):
        User.objects.create_user("zed", password="pw")  # in the test process's test database
        session = requests.Session()
        login = session.post(self.live_server_url + "/login/",
                             data={"username": "zed", "password": "pw"}, timeout=10)
        assert login.status_code == 200, login.text
        headers = {"Origin": self.live_server_url,
                   "Cookie": "sessionid=" + session.cookies["sessionid"]}

        async def chat():
            async with websockets.connect(self.live_server_ws_url + "/chat/lobby/",
                                          additional_headers=headers, open_timeout=10) as ws:
                hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert hello == {"hello": "zed", "room": "lobby"}

        asyncio.run(chat())
"""


def test_default_mode_shares_the_test_database(tmp_path, redis_url, unique_prefix):
    """The default (share_test_databases): the live worker uses the test run's own database,
    so objects a test creates are there for the live server. Run as a pytest of its own, since
    the test database must be a file for another process to open it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "default_mode_settings.py").write_text(DEFAULT_MODE_SETTINGS.format(
        db=str(tmp_path / "db.sqlite3"), test_db=str(tmp_path / "test_db.sqlite3"),
        redis_url=redis_url, prefix=unique_prefix))
    (tmp_path / "test_default_mode.py").write_text(DEFAULT_MODE_TEST)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(tmp_path)])}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "--ds", "default_mode_settings", "--rootdir", str(tmp_path),
         str(tmp_path / "test_default_mode.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=25)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


class LiveServerConfigurationTests(ChannelLiveServerTestCase):
    """Misconfigurations are reported before any process starts (no processes here)."""

    def _setup_and_call(self, result, debug=False):
        # Skip the live server start-up of the base class: these tests call the checks directly.
        super(ChannelLiveServerTestCase, self)._setup_and_call(result, debug)

    def test_in_memory_sqlite_is_refused_with_an_explanation(self):
        from django.core.exceptions import ImproperlyConfigured

        with pytest.raises(ImproperlyConfigured, match="in-memory SQLite"):
            self._child_environment()

    def test_missing_test_config_is_refused(self):
        from django.core.exceptions import ImproperlyConfigured

        self._swapped_layer = False
        with pytest.raises(ImproperlyConfigured, match="TEST_CONFIG"):
            self._swap_parent_layer()

    def test_file_test_databases_are_passed_to_the_children(self):
        import os
        import subprocess
        import sys

        from django.db import connections

        from channels.test.liveserver import DATABASES_ENV

        settings_dict = connections["default"].settings_dict
        real_name = settings_dict["NAME"]
        settings_dict["NAME"] = "/tmp/channels-live/test_db.sqlite3"
        try:
            env = self._child_environment()
        finally:
            settings_dict["NAME"] = real_name
        assert json.loads(env[DATABASES_ENV]) == {"default": "/tmp/channels-live/test_db.sqlite3"}
        env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
        child = subprocess.run(
            [sys.executable, "-c", "from channels.test.liveserver import _setup_django; "
             "_setup_django(); from django.db import connections; "
             "print(connections['default'].settings_dict['NAME'])"],
            env=env, capture_output=True, text=True, timeout=20, cwd=os.getcwd())
        assert child.stdout.strip() == "/tmp/channels-live/test_db.sqlite3", child.stderr
