"""Fixtures of the consumer tests: a Redis-backed layer for live server tests, and the pieces of
the ordering tests that run real worker threads (a layer installed as ``default``, the workers,
the interleaved traffic of several sockets, and a record of what ran in which order)."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from channels.asgi import ChannelLayerWrapper, channel_layers
from channels.test import Client
from channels.worker import Worker


@pytest.fixture
def live_chat(request, settings, redis_url, unique_prefix, monkeypatch, tmp_path):
    """Settings shared by the test process and its live server children: the chat routing on a
    Redis layer under this test's own prefix, and a database file the worker migrates."""
    _live_settings("tests.consumers.chat.channel_routing", settings, redis_url, unique_prefix,
                   monkeypatch, tmp_path)


@pytest.fixture
def live_no_http_route(request, settings, redis_url, unique_prefix, monkeypatch, tmp_path):
    """The same with a routing that leaves http.request to the defaults (views, static files)."""
    _live_settings("tests.testapp.routing.channel_routing", settings, redis_url, unique_prefix,
                   monkeypatch, tmp_path)


def _live_settings(routing, settings, redis_url, unique_prefix, monkeypatch, tmp_path):
    layer_config = {"hosts": [redis_url], "prefix": unique_prefix}
    overrides = {
        "CHANNEL_LAYERS": {"default": {
            "BACKEND": "channels.layers.redis.RedisChannelLayer",
            "CONFIG": layer_config,
            "TEST_CONFIG": layer_config,
            "ROUTING": routing,
        }},
        "ROOT_URLCONF": "tests.consumers.chat",
        "DATABASES": {"default": {"ENGINE": "django.db.backends.sqlite3",
                                  "NAME": str(tmp_path / "live.sqlite3")}},
        "PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"],
    }
    monkeypatch.setenv("CHANNELS_LIVE_TEST_SETTINGS", json.dumps(overrides))
    settings.CHANNEL_LAYERS = overrides["CHANNEL_LAYERS"]
    settings.ROOT_URLCONF = overrides["ROOT_URLCONF"]


# -- ordering with real worker threads ---------------------------------------------------------


@pytest.fixture
def sessions_in_locmem_cache(settings):
    """Channel sessions in a process-local cache: shared by worker threads, no database."""
    settings.CHANNEL_SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.fixture
def sessions_in_redis(settings, redis_url, unique_prefix):
    """Channel sessions in Redis, under this test's own key prefix."""
    settings.CHANNEL_SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": redis_url, "KEY_PREFIX": unique_prefix}}


@pytest.fixture
def default_layer() -> Iterator[Callable[..., ChannelLayerWrapper]]:
    """``install(layer, routing)`` makes ``layer`` the ``default`` alias for this test; after it,
    the previous layer is back and this one flushed and closed."""
    installed: list[tuple[Any, Any]] = []

    def install(layer: Any, routing: list | None = None) -> ChannelLayerWrapper:
        wrapper = ChannelLayerWrapper(layer, "default", routing or [])
        installed.append((channel_layers.set("default", wrapper), layer))
        return wrapper

    yield install
    for previous, layer in reversed(installed):
        channel_layers.set("default", previous)
        layer.flush()
        layer.close()


class WorkerThreads:
    """Real ``Worker`` loops on the ``default`` layer, each in its own thread."""

    def __init__(self) -> None:
        self.running: list[tuple[Worker, threading.Thread]] = []

    def start(self, count: int = 4) -> None:
        for _ in range(count):
            worker = Worker(channel_layers["default"], signal_handlers=False)
            thread = threading.Thread(target=worker.run, daemon=True)
            thread.start()
            self.running.append((worker, thread))

    def stop(self) -> None:
        """Stop and join them all. A stopped worker has sent the replies it still held (it
        sends a consumer's replies together with its next receive), so stop before reading
        every reply."""
        for worker, _ in self.running:
            worker.stop()
        for _, thread in self.running:
            thread.join(5)
        self.running = []


@pytest.fixture
def worker_threads() -> Iterator[WorkerThreads]:
    """Worker threads to ``start(count)``; stopped after the test, whatever its outcome."""
    threads = WorkerThreads()
    yield threads
    threads.stop()


class SocketTraffic:
    """Several sockets' messages, each socket's numbered with ``order`` as the interface server
    numbers them (connect 0, receives 1..frames, then the disconnect), shuffled with a fixed
    seed: the order in which concurrent workers may well take them."""

    def __init__(self, sockets: int, frames: int, disconnect: bool, seed: int) -> None:
        self.clients = [Client() for _ in range(sockets)]
        self.messages_per_socket = frames + 1 + disconnect
        self.messages: list[tuple[str, dict[str, Any], Client]] = []
        for client in self.clients:
            self.messages.append(("websocket.connect", {"order": 0}, client))
            self.messages += [("websocket.receive", {"order": n, "text": "x"}, client)
                              for n in range(1, frames + 1)]
            if disconnect:
                self.messages.append(
                    ("websocket.disconnect", {"order": frames + 1, "code": 1000}, client))
        random.Random(seed).shuffle(self.messages)

    def send_all(self) -> None:
        for channel, content, client in self.messages:
            client.send(channel, content)

    @staticmethod
    def replies(client: Client) -> list[int]:
        """The orders a socket's replies carry (consumers reply with their message's order)."""
        orders = []
        while (content := client.receive()) is not None:
            orders.append(int(content["text"]))
        return orders


@pytest.fixture
def socket_traffic() -> Callable[..., SocketTraffic]:
    """``socket_traffic(sockets, frames, disconnect=True, seed=0)``; build it after the layer
    the clients send on is installed."""
    return SocketTraffic


class OrderRecorder:
    """Which orders consumers ran, per socket, in the order they ran them; ``finished`` is set
    once ``sockets`` sockets have each run ``per_socket`` messages."""

    def __init__(self, sockets: int, per_socket: int) -> None:
        self.sockets = sockets
        self.per_socket = per_socket
        self.runs: dict[str, list[int]] = {}
        self.finished = threading.Event()
        self._lock = threading.Lock()

    def record(self, message: Any) -> None:
        with self._lock:
            self.runs.setdefault(message.reply_channel.name, []).append(message["order"])
            done = sum(len(orders) == self.per_socket for orders in self.runs.values())
        if done == self.sockets:
            self.finished.set()

    def wait(self, timeout: float = 15) -> None:
        assert self.finished.wait(timeout), f"stuck: {self.runs}"


@pytest.fixture
def order_recorder() -> Callable[[int, int], OrderRecorder]:
    """``order_recorder(sockets, per_socket)``: a fresh :class:`OrderRecorder`."""
    return OrderRecorder
