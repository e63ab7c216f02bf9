"""``channels-server`` serves a layer with only the synchronous ASGI 1 API (as daphne did):
its calls run on threads, never on the reactor's, and its reply receive blocks in a thread."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest
import requests
from websockets.sync.client import connect

from channels.asgi import ChannelLayerWrapper
from channels.layers.inmemory import InMemoryChannelLayer
from channels.server.sync_layer import SyncLayerAdapter, server_layer
from tests.compat.sync_only_layers import DictLayer, SyncRedisLayer
from tests.core.processes import Process, channels_server, django_command, project_env

WAIT = 15


class ThreadRecordingLayer(DictLayer):
    """Records which thread each call ran on."""

    def __init__(self):
        super().__init__(capacity=1)
        self.threads: dict[str, set[int]] = {"send": set(), "receive": set(), "new_channel": set()}

    def send(self, channel, message):
        self.threads["send"].add(threading.get_ident())
        super().send(channel, message)

    def receive(self, channels, block=False):
        self.threads["receive"].add(threading.get_ident())
        return super().receive(channels, block)

    def new_channel(self, pattern):
        self.threads["new_channel"].add(threading.get_ident())
        return super().new_channel(pattern)


def test_layers_are_adapted_only_when_they_lack_the_asyncio_extension():
    in_memory = InMemoryChannelLayer()
    assert server_layer(in_memory) is in_memory
    wrapper = ChannelLayerWrapper(in_memory, "default", [])
    assert server_layer(wrapper) is wrapper  # its asyncio API is the backend's, passed through
    sync_only = DictLayer()
    adapted = server_layer(ChannelLayerWrapper(sync_only, "default", []))
    assert isinstance(adapted, SyncLayerAdapter) and adapted.channel_layer is sync_only
    assert adapted.ChannelFull is DictLayer.ChannelFull
    forced = server_layer(in_memory, force_sync=True)
    assert isinstance(forced, SyncLayerAdapter) and forced.channel_layer is in_memory


def test_every_call_runs_off_the_event_loop_thread_and_errors_come_back():
    layer = ThreadRecordingLayer()
    adapter = SyncLayerAdapter(layer)

    async def scenario():
        loop_thread = threading.get_ident()
        body_channel = await adapter.new_channel_async("http.request.body?")
        await adapter.send_async("websocket.send.proc!a", {"text": "hi"})
        with pytest.raises(DictLayer.ChannelFull):
            await adapter.send_async("websocket.send.proc!b", {"text": "full"})
        received = await adapter.receive_async(["websocket.send.proc!"])
        return loop_thread, body_channel, received

    loop_thread, body_channel, received = asyncio.run(scenario())
    assert body_channel.startswith("http.request.body?") and len(body_channel) > 18
    assert received == ("websocket.send.proc!a", {"text": "hi"})
    for method, threads in layer.threads.items():
        assert threads and loop_thread not in threads, method


def test_an_idle_reply_loop_neither_spins_nor_stalls_the_event_loop():
    """The layer never blocks; the adapter pauses in its thread, and the loop stays free."""
    layer = DictLayer()
    adapter = SyncLayerAdapter(layer)

    async def scenario():
        async def reply_loop():
            while True:
                await adapter.receive_async(["http.response.proc!"])

        task = asyncio.get_running_loop().create_task(reply_loop())
        await asyncio.sleep(0.1)
        before = layer.receive_calls
        ticks = 0
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # the loop keeps turning while the receive waits
            ticks += 1
        during = layer.receive_calls - before
        # A reply arrives promptly even though the layer is being asked rarely.
        layer.send("http.response.proc!x", {"status": 200})
        task.cancel()
        return during, ticks

    during, ticks = asyncio.run(scenario())
    assert 2 <= during <= 40, during  # about 10 at the 50 ms ceiling
    assert ticks >= 25, ticks


def test_a_reply_is_handed_over_as_soon_as_the_layer_returns_it():
    layer = DictLayer()
    adapter = SyncLayerAdapter(layer)

    async def reply_loop():
        while True:  # as the server's: an empty answer is simply asked again
            channel, message = await adapter.receive_async(["http.response.proc!"])
            if channel is not None:
                return channel, message

    async def scenario():
        receive = asyncio.ensure_future(reply_loop())
        await asyncio.sleep(0.3)  # quiet: the adapter's pause is at its ceiling
        sent = time.monotonic()
        await adapter.send_async("http.response.proc!x", {"status": 200})
        received = await asyncio.wait_for(receive, 5)
        return received, time.monotonic() - sent

    received, latency = asyncio.run(scenario())
    assert received == ("http.response.proc!x", {"status": 200})
    assert latency < 0.5


@pytest.fixture
def sync_layer_env(tmp_path, redis_url):
    prefix = f"compat-sync-{uuid.uuid4().hex[:10]}:"
    env = project_env(tmp_path / "db.sqlite3", redis_url=redis_url, prefix=prefix,
                      DJANGO_SETTINGS_MODULE="tests.compat.sync_layer_settings")
    layer = SyncRedisLayer(hosts=[redis_url], prefix=prefix)
    try:
        yield env
    finally:
        layer.flush()
        layer.close()


def test_http_and_websocket_through_channels_server_and_runworker_on_a_sync_only_layer(
        sync_layer_env):
    worker = Process(django_command("runworker"), sync_layer_env)
    server = Process(channels_server("tests.core.project.asgi:channel_layer",
                                     "-e", "tcp:port=0:interface=127.0.0.1"), sync_layer_env)
    try:
        worker.wait_for(r"Listening on channels .*http\.request", timeout=WAIT)
        port = server.wait_for(r"Listening on 127\.0\.0\.1:(\d+)", timeout=WAIT).group(1)
        server.wait_for(r"SyncRedisLayer has no asyncio extension: its calls run on threads")

        response = requests.get(f"http://127.0.0.1:{port}/hello/", timeout=WAIT)
        assert response.status_code == 200 and response.text == "Hello, world"

        with connect(f"ws://127.0.0.1:{port}/echo/", open_timeout=WAIT,
                     close_timeout=2) as websocket:
            for text in ("ping", "pong"):
                websocket.send(text)
                assert websocket.recv(timeout=WAIT) == f"echo:{text}"
    finally:
        server.kill()
        worker.kill()


def test_force_sync_serves_a_layer_through_its_synchronous_api():
    """daphne's ``--force-sync`` is accepted: the asyncio extension is left unused."""
    from tests.server.conftest import ServerProcess

    server = ServerProcess(["--force-sync"], {"ECHO_BACKEND": "memory"}).start()
    try:
        server.wait_for_output(r"has no asyncio extension in use \(--force-sync\)")
        response = requests.get(f"{server.url}/hello?x=1", timeout=WAIT)
        assert response.status_code == 200 and response.json()["query_string"] == "x=1"
        with connect(f"{server.ws_url}/ws/echo", open_timeout=WAIT) as websocket:
            websocket.send("over threads")
            assert websocket.recv(timeout=WAIT) == "over threads"
    finally:
        server.stop()
