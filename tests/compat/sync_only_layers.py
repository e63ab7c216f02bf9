"""Third-party style channel layers with only the synchronous ASGI 1 API.

Written the way layers for Channels 1 were: ``send``, ``receive(channels, block)``,
``new_channel``, the groups extension, ``extensions``, the two exception classes, and nothing
else (no ``receive_many``, no ``receive_batch``, no asyncio methods). Both treat a
process-specific name ``prefix!local`` as a message queued under ``prefix!``, delivered with its
full name, as ASGI 1 asks.
"""

from __future__ import annotations

import random
import string
import threading
from collections import deque
from typing import Any


def _queue_name(channel: str) -> str:
    """``a.b!xyz`` is read through ``a.b!``: one queue per process prefix."""
    if "!" in channel:
        return channel[: channel.index("!") + 1]
    return channel


def _random_suffix() -> str:
    return "".join(random.choices(string.ascii_letters, k=12))


class DictLayer:
    """In one process, thread-safe, and its ``receive`` never waits, even with ``block=True``
    (ASGI 1 allows that). Counts its receive calls so a test can see how often it is asked."""

    extensions = ["groups"]

    class ChannelFull(Exception):
        pass

    class MessageTooLarge(Exception):
        pass

    def __init__(self, capacity: int = 100) -> None:
        self.capacity = capacity
        self.queues: dict[str, deque[tuple[str, dict]]] = {}
        self.groups: dict[str, set[str]] = {}
        self.lock = threading.Lock()
        self.receive_calls = 0

    def send(self, channel: str, message: dict) -> None:
        if not isinstance(message, dict):
            raise TypeError("message must be a dict")
        with self.lock:
            queue = self.queues.setdefault(_queue_name(channel), deque())
            if len(queue) >= self.capacity:
                raise self.ChannelFull(channel)
            queue.append((channel, message))

    def receive(self, channels: list[str], block: bool = False) -> tuple[Any, Any]:
        with self.lock:
            self.receive_calls += 1
            names = list(channels)
            random.shuffle(names)
            for name in names:
                queue = self.queues.get(name)
                if queue:
                    return queue.popleft()
        return None, None

    def new_channel(self, pattern: str) -> str:
        return pattern + _random_suffix()

    def group_add(self, group: str, channel: str) -> None:
        with self.lock:
            self.groups.setdefault(group, set()).add(channel)

    def group_discard(self, group: str, channel: str) -> None:
        with self.lock:
            self.groups.get(group, set()).discard(channel)

    def send_group(self, group: str, message: dict) -> None:
        with self.lock:
            members = list(self.groups.get(group, ()))
        for channel in members:
            try:
                self.send(channel, message)
            except self.ChannelFull:
                pass


class SyncRedisLayer:
    """Shared by processes through Redis, with plain (blocking) redis-py calls: ``LPUSH`` to
    send, ``BRPOP`` for a blocking receive. Messages are msgpack envelopes carrying the full
    channel name."""

    extensions = ["groups", "flush"]

    class ChannelFull(Exception):
        pass

    class MessageTooLarge(Exception):
        pass

    def __init__(self, hosts: list[str] | None = None, prefix: str = "syncasgi:",
                 expiry: int = 60, group_expiry: int = 86400, capacity: int = 100,
                 blocking_timeout: int = 1) -> None:
        import redis

        self.hosts = list(hosts or ["redis://127.0.0.1:6379/0"])
        self.prefix = prefix
        self.expiry = expiry
        self.group_expiry = group_expiry
        self.capacity = capacity
        self.blocking_timeout = blocking_timeout
        # The socket timeout must outlast a blocking pop.
        self.client = redis.Redis.from_url(self.hosts[0], socket_timeout=blocking_timeout + 5)

    def _key(self, channel: str) -> str:
        return f"{self.prefix}{_queue_name(channel)}"

    def send(self, channel: str, message: dict) -> None:
        import msgpack

        if not isinstance(message, dict):
            raise TypeError("message must be a dict")
        key = self._key(channel)
        if self.client.llen(key) >= self.capacity:
            raise self.ChannelFull(channel)
        envelope = msgpack.packb({"channel": channel, "message": message}, use_bin_type=True)
        pipe = self.client.pipeline()
        pipe.lpush(key, envelope)
        pipe.expire(key, self.expiry)
        pipe.execute()

    def receive(self, channels: list[str], block: bool = False) -> tuple[Any, Any]:
        import msgpack

        keys = [self._key(channel) for channel in channels]
        random.shuffle(keys)
        if block:
            popped = self.client.brpop(keys, timeout=self.blocking_timeout)
            envelope = popped[1] if popped else None
        else:
            envelope = next((value for value in (self.client.rpop(key) for key in keys)
                             if value is not None), None)
        if envelope is None:
            return None, None
        unpacked = msgpack.unpackb(envelope, raw=False)
        return unpacked["channel"], unpacked["message"]

    def new_channel(self, pattern: str) -> str:
        return pattern + _random_suffix()

    def _group_key(self, group: str) -> str:
        return f"{self.prefix}group:{group}"

    def group_add(self, group: str, channel: str) -> None:
        pipe = self.client.pipeline()
        pipe.sadd(self._group_key(group), channel)
        pipe.expire(self._group_key(group), self.group_expiry)
        pipe.execute()

    def group_discard(self, group: str, channel: str) -> None:
        self.client.srem(self._group_key(group), channel)

    def send_group(self, group: str, message: dict) -> None:
        for member in self.client.smembers(self._group_key(group)):
            try:
                self.send(member.decode(), message)
            except self.ChannelFull:
                pass

    def flush(self) -> None:
        keys = list(self.client.scan_iter(match=f"{self.prefix}*"))
        if keys:
            self.client.delete(*keys)

    def close(self) -> None:
        self.client.close()
