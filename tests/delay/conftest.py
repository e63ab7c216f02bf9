"""Fixtures of the delay server tests: layers, a worker in a thread, captured log lines."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections

from channels.asgi import ChannelLayerWrapper
from channels.delay.worker import Worker
from channels.layers.inmemory import InMemoryChannelLayer
from channels.layers.redis import RedisChannelLayer

WAIT = 10


@pytest.fixture
def memory_layer() -> Iterator[ChannelLayerWrapper]:
    """A fresh in-memory layer (wrapped as Django code sees it): destination capacity 2, and
    blocking receives of 0.2 s, so that a worker stops quickly."""
    layer = InMemoryChannelLayer(channel_capacity={"dest.*": 2}, blocking_timeout=0.2)
    yield ChannelLayerWrapper(layer, "default", [])
    layer.close()


@pytest.fixture
def redis_layer(redis_url: str, unique_prefix: str) -> Iterator[ChannelLayerWrapper]:
    layer = RedisChannelLayer(hosts=[redis_url], prefix=unique_prefix)
    yield ChannelLayerWrapper(layer, "default", [])
    layer.flush()
    layer.close()


class LogWatch(logging.Handler):
    """Collects ``channels.delay`` records and lets a test wait for one (no polling)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._changed:
            self.records.append(record)
            self._changed.notify_all()

    def lines(self, level: int = logging.DEBUG) -> list[str]:
        return [r.getMessage() for r in list(self.records) if r.levelno >= level]

    def wait_for(self, pattern: str, count: int = 1, timeout: float = WAIT) -> list[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [line for line in self.lines() if regex.search(line)]
                remaining = deadline - time.monotonic()
                if len(found) >= count or remaining <= 0:
                    break
                self._changed.wait(remaining)
        assert len(found) >= count, f"{pattern!r} seen {len(found)}/{count} times: {self.lines()}"
        return found


@pytest.fixture
def delay_log() -> Iterator[LogWatch]:
    logger = logging.getLogger("channels.delay")
    watch = LogWatch()
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(watch)
    yield watch
    logger.removeHandler(watch)
    logger.setLevel(old_level)


@contextlib.contextmanager
def running_worker(layer: Any, **options: Any) -> Iterator[Worker]:
    """A delay worker running in a thread for the duration of the block, stopped after it.

    ``requeue_delay`` may be given too (a class attribute of the worker).
    """
    requeue_delay = options.pop("requeue_delay", None)
    worker = Worker(layer, signal_handlers=False, **options)
    if requeue_delay is not None:
        worker.requeue_delay = requeue_delay
    failure: list[BaseException] = []

    def target() -> None:
        try:
            worker.run()
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failure.append(exc)
        finally:
            connections.close_all()  # this thread's connections, before the test's teardown

    thread = threading.Thread(target=target, name="delay-worker", daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(WAIT)
        assert not thread.is_alive(), "the delay worker did not stop"
    assert not failure, f"the delay worker raised {failure[0]!r}"


def receive_on(layer: Any, channel: str, timeout: float = WAIT) -> tuple[dict, float]:
    """The next message on ``channel`` and the wall-clock time it was received."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        name, content = layer.receive([channel], block=True)
        if name is not None:
            return content, time.time()
    raise AssertionError(f"nothing on {channel} within {timeout}s")
