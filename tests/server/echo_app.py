"""A tiny application for the server tests: ``channel_layer`` plus an echo worker thread.

Run as ``channels-server tests.server.echo_app:channel_layer``. Configured by environment:
``ECHO_BACKEND`` (``memory``/``redis``), ``ECHO_REDIS_URL``, ``ECHO_PREFIX``, ``ECHO_CAPACITIES``
(``channel=n,channel=n``), ``ECHO_MAX_MESSAGE_SIZE``, ``ECHO_WORKER`` (``0`` = no worker
thread). What it answers depends on the request path (see ``EchoWorker``), so each test picks a
behaviour by URL.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from typing import Any
from urllib.parse import parse_qs


def _capacities() -> dict[str, int]:
    spec = os.environ.get("ECHO_CAPACITIES", "")
    return {name: int(n) for name, _, n in (p.partition("=") for p in spec.split(",") if p)}


def make_layer() -> Any:
    backend = os.environ.get("ECHO_BACKEND", "memory")
    options: dict[str, Any] = {"channel_capacity": _capacities(), "blocking_timeout": 1}
    if os.environ.get("ECHO_MAX_MESSAGE_SIZE"):
        options["max_message_size"] = int(os.environ["ECHO_MAX_MESSAGE_SIZE"])
    if backend == "redis":
        from channels.layers.redis import RedisChannelLayer

        return RedisChannelLayer(hosts=[os.environ["ECHO_REDIS_URL"]],
                                 prefix=os.environ.get("ECHO_PREFIX", "asgi:"), **options)
    from channels.layers.inmemory import InMemoryChannelLayer

    return InMemoryChannelLayer(**options)


class EchoWorker(threading.Thread):
    """Answers ``http.request`` and ``websocket.*`` like a minimal application would.

    HTTP paths: ``/stream?parts=N`` (chunked response), ``/slow-stream`` (second part after
    1.5 s), ``/noreply``, ``/bad-reply`` (no status), ``/pause-http?seconds=S`` (answer, then stop
    reading http.request for S s), ``/events`` (http/websocket disconnects seen so far, JSON);
    anything else: 200 with a JSON summary of the request message (body length and md5).
    WebSocket paths: ``/ws/reject``, ``/ws/close``, ``/ws/accept-send``, ``/ws/accept-close``,
    ``/ws/accept-and-send``, ``/ws/noaccept``, ``/ws/slow-accept?ms=N``,
    ``/ws/pause-receive?seconds=S``; frames are echoed,
    text ``close:NNNN`` closes with that code, text ``order`` answers the message's order,
    ``send-to:CHANNEL:TEXT`` sends TEXT to another reply channel and answers ``sent``.
    """

    def __init__(self, channel_layer: Any) -> None:
        super().__init__(name="echo-worker", daemon=True)
        self.channel_layer = channel_layer
        self.events: list[dict] = []
        self.paused_until: dict[str, float] = {}
        self.delayed: list[tuple[float, str, dict]] = []

    def run(self) -> None:
        channels = ["http.request", "http.disconnect", "websocket.connect", "websocket.receive",
                    "websocket.disconnect"]
        while True:
            now = time.monotonic()
            for due, channel, message in list(self.delayed):
                if due <= now:
                    self.delayed.remove((due, channel, message))
                    self.reply(channel, message)
            listening = [c for c in channels if self.paused_until.get(c, 0) <= now]
            try:
                batch = self.channel_layer.receive_batch(listening, 10, block=True) \
                    if not self.delayed else self.channel_layer.receive_batch(listening, 10)
            except Exception:  # noqa: BLE001 - layer outages are part of the tests
                time.sleep(0.1)
                continue
            if not batch and self.delayed:
                time.sleep(0.01)
            for channel, message in batch:
                try:
                    getattr(self, channel.replace(".", "_"))(message)
                except Exception as exc:  # noqa: BLE001
                    print(f"echo worker failed on {channel}: {exc!r}", flush=True)

    def reply(self, channel: str, message: dict) -> None:
        for _ in range(200):
            try:
                self.channel_layer.send(channel, message)
                return
            except Exception:  # noqa: BLE001 - retry while the layer is away or full
                time.sleep(0.05)

    # -- HTTP -------------------------------------------------------------------------------

    def http_request(self, message: dict) -> None:
        path, reply = message["path"], message["reply_channel"]
        query = parse_qs(message["query_string"].decode())
        if path == "/noreply":
            self.events.append({"channel": "http.request", "path": path, "reply_channel": reply})
            return
        if path == "/bad-reply":
            self.reply(reply, {"content": b"no status"})
            return
        if path == "/events":
            self._json(reply, self.events)
            return
        if path == "/stream":
            parts = int(query.get("parts", ["3"])[0])
            self.reply(reply, {"status": 200, "headers": [[b"content-type", b"text/plain"]],
                               "content": b"part0\n", "more_content": True})
            for number in range(1, parts):
                self.reply(reply, {"content": f"part{number}\n".encode(),
                                   "more_content": number < parts - 1})
            return
        if path == "/slow-stream":
            self.reply(reply, {"status": 200, "content": b"first\n", "more_content": True})
            self.delayed.append((time.monotonic() + 1.5, reply,
                                 {"content": b"second\n", "more_content": False}))
            return
        if path == "/pause-http":
            self.paused_until["http.request"] = time.monotonic() + float(query["seconds"][0])
        body = message.get("body", b"")
        if message.get("body_channel"):
            body += self._read_body(message["body_channel"])
        summary = {key: message[key] for key in ("http_version", "method", "scheme", "path",
                                                 "root_path", "client", "server")}
        summary["query_string"] = message["query_string"].decode("latin-1")
        summary["headers"] = [[n.decode("latin-1"), v.decode("latin-1")]
                              for n, v in message["headers"]]
        summary["body_length"] = len(body)
        summary["body_md5"] = hashlib.md5(body).hexdigest()
        summary["streamed_body"] = bool(message.get("body_channel"))
        self._json(reply, summary)

    def _read_body(self, body_channel: str) -> bytes:
        parts = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            channel, chunk = self.channel_layer.receive([body_channel], block=True)
            if channel is None:
                continue
            if chunk.get("closed"):
                break
            parts.append(chunk["content"])
            if not chunk.get("more_content"):
                break
        return b"".join(parts)

    def _json(self, reply: str, value: Any) -> None:
        self.reply(reply, {"status": 200, "headers": [[b"content-type", b"application/json"]],
                           "content": json.dumps(value).encode()})

    def http_disconnect(self, message: dict) -> None:
        self.events.append({"channel": "http.disconnect", **message})

    # -- WebSocket --------------------------------------------------------------------------

    def websocket_connect(self, message: dict) -> None:
        path, reply = message["path"], message["reply_channel"]
        query = parse_qs(message["query_string"].decode())
        answers = {
            "/ws/reject": {"accept": False},
            "/ws/close": {"close": True},
            "/ws/accept-send": {"text": "hello"},
            "/ws/accept-close": {"accept": True, "close": 4001},
            "/ws/accept-and-send": {"accept": True, "text": "welcome"},
        }
        if path == "/ws/noaccept":
            return
        if path == "/ws/slow-accept":
            delay = int(query.get("ms", ["500"])[0]) / 1000
            self.delayed.append((time.monotonic() + delay, reply, {"accept": True}))
            return
        if path == "/ws/pause-receive":
            self.paused_until["websocket.receive"] = (
                time.monotonic() + float(query["seconds"][0]))
        if path == "/ws/info":
            self.reply(reply, {"accept": True})
            self.reply(reply, {"text": json.dumps({
                key: (value.decode("latin-1") if isinstance(value, bytes) else value)
                for key, value in message.items() if key != "headers"})})
            return
        self.reply(reply, answers.get(path, {"accept": True}))

    def websocket_receive(self, message: dict) -> None:
        reply, text = message["reply_channel"], message.get("text")
        if text is not None and text.startswith("close:"):
            self.reply(reply, {"close": int(text[6:])})
        elif text is not None and text.startswith("send-to:"):
            _, target, content = text.split(":", 2)
            self.reply(target, {"text": content})
            self.reply(reply, {"text": "sent"})
        elif text == "order":
            self.reply(reply, {"text": str(message["order"])})
        elif text is not None:
            self.reply(reply, {"text": text})
        else:
            self.reply(reply, {"bytes": message["bytes"]})

    def websocket_disconnect(self, message: dict) -> None:
        self.events.append({"channel": "websocket.disconnect", **message})


channel_layer = make_layer()
if os.environ.get("ECHO_WORKER", "1") != "0":
    EchoWorker(channel_layer).start()
