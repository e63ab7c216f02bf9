"""``channel_layers[alias]`` and ``message.channel_layer`` answer for the backend, as the
Channels 1.1 wrapper did: its settings, its exceptions and its own methods."""

from __future__ import annotations

import copy
import pickle

import pytest
from django.test import override_settings

from channels.asgi import ChannelLayerWrapper, channel_layers
from channels.layers.inmemory import InMemoryChannelLayer
from channels.routing import route
from channels.worker import Worker
from tests.compat.sync_only_layers import DictLayer


class LayerWithExtras(DictLayer):
    """A custom backend with a method and settings of its own, and names the wrapper owns."""

    alias = "the backend's alias"
    routing = "the backend's routing"
    router = "the backend's router"
    hosts = [("redis.internal", 6379)]

    def __init__(self, **config):
        super().__init__()
        self.config = config

    def local_only(self):
        return "the backend's answer"

    def queue_length(self, channel):
        with self.lock:
            return len(self.queues.get(channel, ()))


def test_backend_settings_are_read_through_the_wrapper(redis_url):
    from channels.layers.redis import RedisChannelLayer

    redis_layer = RedisChannelLayer(hosts=[redis_url], channel_capacity={"http.request": 200})
    try:
        wrapper = ChannelLayerWrapper(redis_layer, "default", [])
        assert wrapper.hosts == redis_layer.hosts
        assert wrapper.channel_capacity == redis_layer.channel_capacity
        assert (wrapper.expiry, wrapper.group_expiry, wrapper.capacity) == (60, 86400, 100)
    finally:
        redis_layer.close()


def test_a_custom_backends_own_methods_are_reachable_through_the_registry():
    with override_settings(CHANNEL_LAYERS={"custom": {
        "BACKEND": f"{__name__}.LayerWithExtras", "CONFIG": {"region": "eu"}, "ROUTING": [],
    }}):
        old = channel_layers.set("custom", None)
        try:
            wrapper = channel_layers["custom"]
            wrapper.send("jobs", {"n": 1})
            assert wrapper.queue_length("jobs") == 1
            assert wrapper.config == {"region": "eu"}
            assert wrapper.ChannelFull is LayerWithExtras.ChannelFull
        finally:
            channel_layers.set("custom", old)


def test_the_wrappers_own_attributes_win():
    layer = LayerWithExtras()
    wrapper = ChannelLayerWrapper(layer, "default", [route("jobs", print)])
    assert wrapper.alias == "default"
    assert wrapper.routing[0].channels == ["jobs"]
    assert wrapper.router.channels == {"jobs"}
    assert wrapper.local_only() is False
    assert wrapper.channel_layer is layer


def test_missing_attributes_still_raise_attribute_error_and_hasattr_tells_the_truth():
    wrapper = ChannelLayerWrapper(DictLayer(), "default", [])
    with pytest.raises(AttributeError, match="no_such_thing"):
        wrapper.no_such_thing  # noqa: B018
    # The server and worker decide by hasattr whether to use optional extensions.
    assert not hasattr(wrapper, "send_async")
    assert not hasattr(wrapper, "receive_batch")
    assert hasattr(ChannelLayerWrapper(InMemoryChannelLayer(), "default", []), "send_async")


def test_copying_and_pickling_probes_do_not_recurse():
    wrapper = ChannelLayerWrapper(InMemoryChannelLayer(), "default", [])
    assert copy.copy(wrapper).channel_layer is wrapper.channel_layer
    blank = ChannelLayerWrapper.__new__(ChannelLayerWrapper)  # what copy/pickle build first
    with pytest.raises(AttributeError):
        blank.group_add  # noqa: B018
    with pytest.raises((TypeError, pickle.PicklingError, AttributeError)):
        pickle.dumps(wrapper)  # the in-memory layer holds a lock: refused, but no recursion


def test_channels_1_helpers_may_assign_routing_and_router():
    """Channels 1.1's ``apply_routes`` set both on the wrapper; user helpers copied it."""
    from channels.routing import Router

    wrapper = ChannelLayerWrapper(InMemoryChannelLayer(), "default", [route("a", print)])
    assert wrapper.router.channels == {"a"}
    wrapper.routing = [route("b", print)]
    assert wrapper.router.channels == {"b"}
    wrapper.router = Router([route("c", print)])
    assert wrapper.router.channels == {"c"}


def test_message_channel_layer_passes_through_in_a_consumer():
    seen = {}

    def consumer(message):
        seen["length"] = message.channel_layer.queue_length("jobs")
        seen["hosts"] = message.channel_layer.hosts

    layer = LayerWithExtras()
    wrapper = ChannelLayerWrapper(layer, "default", [route("jobs", consumer)])
    layer.send("jobs", {"n": 1})
    layer.send("jobs", {"n": 2})
    channel, content = layer.receive(["jobs"])
    Worker(wrapper, signal_handlers=False).handle(channel, content)
    assert seen == {"length": 1, "hosts": [("redis.internal", 6379)]}
