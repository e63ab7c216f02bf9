"""Serves HTTP requests through the Python API with the cyclic garbage collector switched off,
then counts the request and connection objects still alive. Reference cycles (a timer holding
its owner's bound method, say) would keep every finished request until a full collection; with
none, reference counting frees each one as soon as its connection ends. Prints the counts."""

from __future__ import annotations

import gc
import sys
import threading
import time

import requests

from channels.layers.inmemory import InMemoryChannelLayer
from channels.server import Server
from channels.server.http_protocol import HTTPChannel, WebRequest
from tests.server.echo_app import EchoWorker


def live(kind: type) -> int:
    return sum(1 for obj in gc.get_objects() if isinstance(obj, kind))


def main() -> int:
    gc.disable()
    layer = InMemoryChannelLayer()
    EchoWorker(layer).start()
    ready = threading.Event()
    addresses: list = []

    def on_ready(listening: list) -> None:
        addresses.extend(listening)
        ready.set()

    # A short --http-timeout so that one request below is answered by its deadline firing.
    server = Server(layer, ["tcp:port=0:interface=127.0.0.1"], signal_handlers=False,
                    http_timeout=0.3, ready_callback=on_ready)
    thread = threading.Thread(target=server.run)
    thread.start()
    if not ready.wait(10):
        print("never ready")
        return 1
    host, port = addresses[0]
    statuses = set()
    for number in range(20):  # a new connection each
        statuses.add(requests.get(f"http://{host}:{port}/n{number}", timeout=5,
                                  headers={"Connection": "close"}).status_code)
    with requests.Session() as session:  # keep-alive
        for number in range(20):
            statuses.add(session.get(f"http://{host}:{port}/k{number}", timeout=5).status_code)
    statuses.add(requests.get(f"http://{host}:{port}/noreply", timeout=5,
                              headers={"Connection": "close"}).status_code)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and server.http_channels:
        time.sleep(0.02)  # the server closes its side after the client: no event to await here
    counts = (live(WebRequest), live(HTTPChannel))
    server.stop()
    thread.join(10)
    print(f"statuses={sorted(statuses)} live_requests_and_channels={counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
