"""enforce_ordering with everything real: Redis layer, sessions in Redis, four worker threads."""

from __future__ import annotations

import random
import threading

from channels import route
from channels.asgi import ChannelLayerWrapper, channel_layers
from channels.layers.redis import RedisChannelLayer
from channels.sessions import enforce_ordering, wait_channel_name
from channels.test import Client
from channels.worker import Worker


def test_strict_order_per_socket_with_redis_and_concurrent_workers(redis_url, unique_prefix,
                                                                   settings):
    settings.CHANNEL_SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": redis_url, "KEY_PREFIX": unique_prefix}}
    sockets, frames = 5, 10
    runs: dict[str, list[int]] = {}
    lock = threading.Lock()
    finished = threading.Event()

    @enforce_ordering
    def consumer(message):
        with lock:
            runs.setdefault(message.reply_channel.name, []).append(message["order"])
            if sum(len(orders) == frames + 2 for orders in runs.values()) == sockets:
                finished.set()
        message.reply_channel.send({"text": str(message["order"])})

    routing = [route("websocket.connect", consumer), route("websocket.receive", consumer),
               route("websocket.disconnect", consumer)]
    layer = RedisChannelLayer(hosts=[redis_url], prefix=unique_prefix, blocking_timeout=0.2)
    old = channel_layers.set("default", ChannelLayerWrapper(layer, "default", routing))
    workers = [Worker(channel_layers["default"], signal_handlers=False) for _ in range(4)]
    threads = [threading.Thread(target=worker.run, daemon=True) for worker in workers]
    try:
        clients = [Client() for _ in range(sockets)]
        pending = []
        for client in clients:
            pending.append(("websocket.connect", {"order": 0}, client))
            pending += [("websocket.receive", {"order": n, "text": "x"}, client)
                        for n in range(1, frames + 1)]
            pending.append(("websocket.disconnect", {"order": frames + 1, "code": 1000}, client))
        random.Random(11).shuffle(pending)
        for thread in threads:
            thread.start()
        for channel, content, client in pending:
            client.send(channel, content)
        assert finished.wait(15), f"stuck: {runs}"
        for client in clients:
            assert runs[client.reply_channel] == list(range(frames + 2))
            replies = []
            while (content := client.receive()) is not None:
                replies.append(int(content["text"]))
            assert replies == list(range(frames + 2))
            waits = [wait_channel_name(client.reply_channel, n) for n in range(frames + 2)]
            assert layer.receive(waits) == (None, None)  # nothing left waiting
    finally:
        for worker in workers:
            worker.stop()
        for thread in threads:
            thread.join(5)
        layer.flush()
        channel_layers.set("default", old)
        layer.close()
