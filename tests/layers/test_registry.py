"""The layer registry of ``channels.asgi`` reading ``CHANNEL_LAYERS``."""

from __future__ import annotations

import asyncio

import pytest
from django.test import override_settings

import channels
from channels.asgi import (
    ChannelLayerManager,
    ChannelLayerWrapper,
    InvalidChannelLayerError,
    channel_layers,
    get_channel_layer,
)
from channels.layers.inmemory import InMemoryChannelLayer
from channels.layers.redis import (
    RedisChannelLayer,
    RedisLocalChannelLayer,
    RedisSentinelChannelLayer,
)

ROUTING = "tests.testapp.routing.channel_routing"


def layers_setting(backend, **config):
    return {"default": {"BACKEND": backend, "ROUTING": ROUTING, "CONFIG": config,
                        "TEST_CONFIG": {"capacity": 7}}}


def test_default_alias_and_registry_are_exported():
    assert channels.DEFAULT_CHANNEL_LAYER == "default"
    assert channels.channel_layers is channel_layers


def test_manager_builds_each_alias_once_from_settings():
    with override_settings(CHANNEL_LAYERS=layers_setting(
            "channels.layers.inmemory.InMemoryChannelLayer", capacity=3)):
        manager = ChannelLayerManager()
        wrapper = manager["default"]
        assert manager["default"] is wrapper
        assert isinstance(wrapper.channel_layer, InMemoryChannelLayer)
        assert wrapper.channel_layer.capacity == 3
        assert wrapper.alias == "default" and wrapper.routing == ROUTING
        assert "default" in manager and "other" not in manager
        assert manager.make_test_backend("default").channel_layer.capacity == 7
        assert str(wrapper) == "default (channels.layers.inmemory.InMemoryChannelLayer)"
        assert wrapper.local_only()


@pytest.mark.parametrize(("legacy", "ours"), [
    ("asgiref.inmemory.ChannelLayer", InMemoryChannelLayer),
    ("asgi_redis.RedisChannelLayer", RedisChannelLayer),
    ("asgi_redis.core.RedisChannelLayer", RedisChannelLayer),
    ("asgi_redis.RedisLocalChannelLayer", RedisLocalChannelLayer),
])
def test_legacy_backend_paths_resolve_to_our_layers(legacy, ours, redis_url):
    config = {"hosts": [redis_url]} if ours is not InMemoryChannelLayer else {}
    with override_settings(CHANNEL_LAYERS=layers_setting(legacy, **config)):
        layer = ChannelLayerManager()["default"].channel_layer
        assert type(layer) is ours
        assert not isinstance(layer, RedisSentinelChannelLayer)
        layer.close()


@pytest.mark.parametrize(("setting", "complaint"), [
    ({}, "No channel layer named 'default'"),
    ({"default": {"ROUTING": ROUTING}}, "has no BACKEND"),
    ({"default": {"BACKEND": "channels.layers.inmemory.InMemoryChannelLayer"}}, "has no ROUTING"),
    ({"default": {"BACKEND": "no.such.Layer", "ROUTING": ROUTING}}, "Cannot import"),
    ({"default": {"BACKEND": "channels.layers.inmemory.InMemoryChannelLayer",
                  "ROUTING": ROUTING, "CONFIG": {"bogus": 1}}}, "not valid"),
])
def test_missing_or_invalid_alias_raises_invalid_channel_layer_error(setting, complaint):
    with override_settings(CHANNEL_LAYERS=setting):
        with pytest.raises(InvalidChannelLayerError, match=complaint):
            ChannelLayerManager()["default"]


def test_make_test_backend_needs_test_config():
    setting = {"default": {"BACKEND": "channels.layers.inmemory.InMemoryChannelLayer",
                           "ROUTING": ROUTING}}
    with override_settings(CHANNEL_LAYERS=setting):
        with pytest.raises(InvalidChannelLayerError, match="TEST_CONFIG"):
            ChannelLayerManager().make_test_backend("default")


def test_set_swaps_a_wrapper_and_returns_the_old_one():
    manager = ChannelLayerManager()
    first = ChannelLayerWrapper(InMemoryChannelLayer(), "default", [])
    second = ChannelLayerWrapper(InMemoryChannelLayer(), "default", [])
    assert manager.set("default", first) is None
    assert manager.set("default", second) is first
    assert manager["default"] is second


def test_wrapper_delegates_the_layer_api():
    wrapper = ChannelLayerWrapper(InMemoryChannelLayer(), "default", [])
    wrapper.send("test.w", {"a": 1})
    assert wrapper.receive(["test.w"]) == ("test.w", {"a": 1})
    reply = wrapper.new_channel("test.w?")
    wrapper.group_add("g", reply)
    assert wrapper.group_channels("g") == [reply]
    wrapper.send_group("g", {"b": 2})
    assert wrapper.receive_batch([reply], 5) == [(reply, {"b": 2})]
    wrapper.group_discard("g", reply)
    wrapper.flush()
    assert wrapper.ChannelFull is InMemoryChannelLayer.ChannelFull
    assert "groups" in wrapper.extensions

    async def scenario():
        await wrapper.send_async("test.w", {"c": 3})
        return await wrapper.receive_async(["test.w"])

    assert asyncio.run(scenario()) == ("test.w", {"c": 3})


def test_wrapper_router_is_built_lazily_from_the_routing():
    wrapper = ChannelLayerWrapper(InMemoryChannelLayer(), "default", [])
    from channels.routing import Router

    assert isinstance(wrapper.router, Router)
    assert wrapper.router is wrapper.router


def test_get_channel_layer_returns_the_raw_layer():
    with override_settings(CHANNEL_LAYERS=layers_setting(
            "channels.layers.inmemory.InMemoryChannelLayer")):
        old = channel_layers.set("default", None)
        try:
            assert isinstance(get_channel_layer(), InMemoryChannelLayer)
        finally:
            channel_layers.set("default", old)
