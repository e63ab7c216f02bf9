"""The registry wrapper exposes the layer settings ASGI 1 code reads through it."""


def test_layer_settings_readable_through_the_registry_wrapper():
    """Channels 1.1 code reads ``message.channel_layer.group_expiry``; the wrapper answers."""
    from channels.asgi import ChannelLayerWrapper
    from channels.layers.inmemory import InMemoryChannelLayer

    layer = InMemoryChannelLayer(expiry=7, group_expiry=123, capacity=42)
    wrapper = ChannelLayerWrapper(layer, "default", [])
    assert (wrapper.expiry, wrapper.group_expiry, wrapper.capacity) == (7, 123, 42)


def test_send_many_goes_through_the_wrapper():
    from channels.asgi import ChannelLayerWrapper
    from channels.layers.inmemory import InMemoryChannelLayer

    layer = InMemoryChannelLayer(channel_capacity={"tiny": 1})
    wrapper = ChannelLayerWrapper(layer, "default", [])
    assert wrapper.send_many([("tiny", {"n": 1}), ("tiny", {"n": 2}), ("other", {"n": 3})]) == [
        True, False, True]
    assert layer.receive(["tiny"]) == ("tiny", {"n": 1})
