"""Testing consumers: per-test in-memory layers, clients that act as sockets, route swaps,
and a live server with real interface server and worker processes."""

from channels.test.base import (
    ChannelTestCase,
    ChannelTestMixin,
    Client,
    TransactionChannelTestCase,
    apply_routes,
)
from channels.test.websocket import WSClient

# Channels 1.0 name; it was always the WebSocket-capable client.
HttpClient = WSClient

__all__ = [
    "ChannelTestCase",
    "ChannelTestMixin",
    "Client",
    "HttpClient",
    "TransactionChannelTestCase",
    "WSClient",
    "apply_routes",
    "ChannelLiveServerTestCase",
]


def __getattr__(name: str) -> type:
    # The live server pulls in the interface server (Twisted); only load it when asked for.
    if name == "ChannelLiveServerTestCase":
        from channels.test.liveserver import ChannelLiveServerTestCase

        return ChannelLiveServerTestCase
    raise AttributeError(f"module 'channels.test' has no attribute {name!r}")
