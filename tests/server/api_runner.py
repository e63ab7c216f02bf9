"""Runs :class:`channels.server.Server` through its Python API (as ``runserver`` does), in a
thread, and stops it with ``stop()`` from the main thread. Prints what the test checks."""

from __future__ import annotations

import sys
import threading

import requests

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
    server.stop()
    thread.join(10)
    print(f"addresses={addresses} status={status} alive={thread.is_alive()} actions={actions}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
