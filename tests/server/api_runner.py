"""Runs :class:`channels.server.Server` through its Python API (as ``runserver`` does), in a
thread, drives some traffic, checks that no per-connection state is left behind, and stops it
with ``stop()`` from the main thread. Prints what the test checks."""

from __future__ import annotations

import socket
import sys
import threading
import time

import requests
from websockets.sync.client import connect

from channels.layers.inmemory import InMemoryChannelLayer
from channels.server import Server
from tests.server.echo_app import EchoWorker


def main() -> int:
    layer = InMemoryChannelLayer()
    EchoWorker(layer).start()
    ready = threading.Event()
    addresses: list = []
    actions: list[str] = []

    def on_ready(listening: list) -> None:
        addresses.extend(listening)
        ready.set()

    server = Server(layer, ["tcp:port=0:interface=127.0.0.1"], signal_handlers=False,
                    action_logger=lambda protocol, action, details: actions.append(action),
                    ready_callback=on_ready)
    thread = threading.Thread(target=server.run)
    thread.start()
    if not ready.wait(10):
        print("never ready")
        return 1
    host, port = addresses[0]
    status = requests.get(f"http://{host}:{port}/api", timeout=5).status_code
    first_actions = list(actions)

    # Traffic that must leave nothing behind: WebSockets, keep-alive HTTP, an abandoned request.
    for number in range(20):
        with connect(f"ws://{host}:{port}/ws/echo", open_timeout=5) as ws:
            ws.send(str(number))
            ws.recv(timeout=5)
    with requests.Session() as session:
        for _ in range(20):
            session.get(f"http://{host}:{port}/k", timeout=5)
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(b"GET /noreply HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.1)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (server.reply_protocols or server.ws_connections
                                           or server.http_channels):
        time.sleep(0.02)
    leftovers = (len(server.reply_protocols), len(server.ws_connections),
                 len(server.http_channels))

    server.stop()
    thread.join(10)
    print(f"addresses={addresses} status={status} alive={thread.is_alive()} "
          f"actions={first_actions} leftovers={leftovers}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
