"""Fixtures of the core tests: a fresh in-memory layer wrapper installed as ``default``."""

from __future__ import annotations

import pytest

from channels.asgi import ChannelLayerWrapper, channel_layers
from channels.layers.inmemory import InMemoryChannelLayer


@pytest.fixture
def layer():
    """A fresh in-memory layer as the ``default`` alias (restored afterwards), empty routing."""
    wrapper = ChannelLayerWrapper(InMemoryChannelLayer(blocking_timeout=0.1), "default", [])
    old = channel_layers.set("default", wrapper)
    try:
        yield wrapper
    finally:
        channel_layers.set("default", old)
        wrapper.channel_layer.close()


def make_router(wrapper: ChannelLayerWrapper, routing) -> None:
    """Give ``wrapper`` a routing (the router is rebuilt lazily)."""
    wrapper.routing = routing
    wrapper._router = None
