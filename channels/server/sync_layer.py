"""Serving a layer that has only the synchronous ASGI 1 API (``send``, ``receive``,
``new_channel``), as third-party layers written for Channels 1 often do.

The server never calls a blocking function on its reactor thread, so such a layer's calls run on
threads: sends and ``new_channel`` on a small pool (a socket has at most one send in flight, so
its order is kept), and the one reply receive of the process on a thread of its own, blocked in
the layer's ``receive(block=True)``. The reactor only waits on a future; it never polls.

It is slower than a layer with the asyncio extension (every call is a hop to a thread and back,
and replies arrive no sooner than the layer's own blocking receive returns them), but any layer
that Channels 1.1's server could serve is served.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from channels.layers.base import ChannelFull, MessageTooLarge

logger = logging.getLogger("channels.server")

#: Threads for sends: a send to a healthy layer takes a round trip, so a few threads keep many
#: sockets' sends flowing; more would only add contention on the layer's connections.
SEND_THREADS = 8
#: Pause after an empty receive that came back sooner than the pause (the layer ignores
#: ``block``): doubling up to the maximum while replies stay away, reset by a reply. A layer
#: that blocks properly never pauses here.
EMPTY_RECEIVE_PAUSE = (0.005, 0.05)
#: The server's own API of a layer; a layer that has all of it needs no adapter.
ASYNC_API = ("send_async", "receive_async", "new_channel_async")
SYNC_API = ("send", "receive", "new_channel")


def server_layer(channel_layer: Any, force_sync: bool = False) -> Any:
    """The layer as the server calls it: itself when it has the asyncio extension, else (or
    with ``force_sync``) its synchronous API run on threads; ``TypeError`` if it has neither."""
    if not hasattr(channel_layer, "send_async") and hasattr(channel_layer, "channel_layer"):
        channel_layer = channel_layer.channel_layer  # a registry wrapper: serve the backend
    missing_async = [name for name in ASYNC_API if not hasattr(channel_layer, name)]
    if not missing_async and not force_sync:
        return channel_layer
    missing_sync = [name for name in SYNC_API if not callable(getattr(channel_layer, name, None))]
    if missing_sync:
        raise TypeError(
            f"channel layer {channel_layer!r} lacks both the asyncio extension "
            f"({', '.join(missing_async or ASYNC_API)}) and the ASGI 1 methods "
            f"({', '.join(missing_sync)}) that channels-server needs"
        )
    logger.warning(
        "Channel layer %s.%s has no asyncio extension%s: its calls run on threads, which is "
        "slower than a layer with one (such as the built-in layers)",
        type(channel_layer).__module__, type(channel_layer).__qualname__,
        " in use (--force-sync)" if not missing_async else "",
    )
    return SyncLayerAdapter(channel_layer)


class SyncLayerAdapter:
    """The asyncio calls the server makes (``send_async``, ``receive_async``,
    ``new_channel_async``), done with a synchronous layer on threads."""

    def __init__(self, channel_layer: Any) -> None:
        self.channel_layer = channel_layer
        self.ChannelFull = getattr(channel_layer, "ChannelFull", ChannelFull)  # noqa: N815
        self.MessageTooLarge = getattr(  # noqa: N815
            channel_layer, "MessageTooLarge", MessageTooLarge)
        self.extensions = list(getattr(channel_layer, "extensions", []))
        self._calls = ThreadPoolExecutor(max_workers=SEND_THREADS,
                                         thread_name_prefix="channels-layer-send")
        self._receiver = _ReceiveThread(channel_layer)

    async def send_async(self, channel: str, message: dict) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._calls, self.channel_layer.send, channel, message)

    async def new_channel_async(self, pattern: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._calls, self.channel_layer.new_channel, pattern)

    async def receive_async(self, channels: list[str]) -> tuple[str | None, dict | None]:
        return await self._receiver.receive(asyncio.get_running_loop(), channels)

    def __repr__(self) -> str:
        return f"<SyncLayerAdapter of {self.channel_layer!r}>"


class _ReceiveThread:
    """One daemon thread doing blocking receives, one at a time, for the reactor's loop.

    A daemon thread rather than a pool's: a receive may block for the layer's whole timeout
    (asgi_redis used 5 s), and a stopping server must not wait for it.
    """

    def __init__(self, channel_layer: Any) -> None:
        self.channel_layer = channel_layer
        self._requests: queue.SimpleQueue[tuple[Any, asyncio.Future, list[str]]] = (
            queue.SimpleQueue())
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def receive(self, loop: asyncio.AbstractEventLoop, channels: list[str]) -> asyncio.Future:
        future = loop.create_future()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="channels-layer-receive",
                                                daemon=True)
                self._thread.start()
        self._requests.put((loop, future, list(channels)))
        return future

    def _run(self) -> None:
        pause = EMPTY_RECEIVE_PAUSE[0]
        while True:
            loop, future, channels = self._requests.get()
            started = time.monotonic()
            try:
                result = self.channel_layer.receive(channels, block=True)
                # Inside the try: a layer answering something that is not a pair must fail this
                # receive, not end the thread (the reply loop would then wait forever).
                empty = result is None or result[0] is None
            except Exception as exc:  # noqa: BLE001 - handed to the reply loop, which retries
                _settle(loop, future, None, exc)
                continue
            if empty:
                result = (None, None)
                if time.monotonic() - started < pause:
                    # The layer did not wait: pause here, off the reactor, before it asks again.
                    time.sleep(pause)
                    pause = min(pause * 2, EMPTY_RECEIVE_PAUSE[1])
            else:
                pause = EMPTY_RECEIVE_PAUSE[0]
            _settle(loop, future, result, None)


def _settle(loop: asyncio.AbstractEventLoop, future: asyncio.Future, result: Any,
            error: BaseException | None) -> None:
    def settle() -> None:
        if future.done():  # cancelled: the server is stopping
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:
        pass  # the loop is closed: the server has stopped, nobody waits for this reply
