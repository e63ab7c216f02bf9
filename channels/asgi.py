"""The layer registry: ``CHANNEL_LAYERS`` aliases turned into layer objects, built once each."""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any

from channels import DEFAULT_CHANNEL_LAYER
from channels.layers.base import ChannelFull, MessageTooLarge, send_each

if TYPE_CHECKING:
    from channels.routing import Router

#: Backend paths of Channels 1 deployments, so their settings keep working unchanged.
LEGACY_BACKENDS: dict[str, str] = {
    "asgiref.inmemory.ChannelLayer": "channels.layers.inmemory.InMemoryChannelLayer",
    "asgi_redis.RedisChannelLayer": "channels.layers.redis.RedisChannelLayer",
    "asgi_redis.core.RedisChannelLayer": "channels.layers.redis.RedisChannelLayer",
    "asgi_redis.RedisSentinelChannelLayer": "channels.layers.redis.RedisSentinelChannelLayer",
    "asgi_redis.sentinel.RedisSentinelChannelLayer":
        "channels.layers.redis.RedisSentinelChannelLayer",
    "asgi_redis.RedisLocalChannelLayer": "channels.layers.redis.RedisLocalChannelLayer",
    "asgi_redis.local.RedisLocalChannelLayer": "channels.layers.redis.RedisLocalChannelLayer",
}


class InvalidChannelLayerError(ValueError):
    """``CHANNEL_LAYERS`` lacks the alias, or its entry cannot be turned into a layer."""


def import_backend(path: str) -> type:
    path = LEGACY_BACKENDS.get(path, path)
    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        raise InvalidChannelLayerError(f"BACKEND must be a dotted path to a class: {path!r}")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, class_name)
    except (ImportError, AttributeError) as exc:
        raise InvalidChannelLayerError(f"Cannot import BACKEND {path!r}: {exc}") from exc


class ChannelLayerWrapper:
    """A layer plus its alias and routing, as the Django side sees it."""

    def __init__(self, channel_layer: Any, alias: str, routing: Any) -> None:
        self.channel_layer = channel_layer
        self.alias = alias
        self.routing = routing
        self._router: Router | None = None

    @property
    def router(self) -> Router:
        # Built on first use: routing modules import consumers, which may import this module.
        if self._router is None:
            from channels.routing import Router

            self._router = Router(self.routing)
        return self._router

    @property
    def extensions(self) -> list[str]:
        return self.channel_layer.extensions

    # The layer settings ASGI 1 code reads through the wrapper (e.g. a consumer computing a
    # timeout from ``message.channel_layer.group_expiry``), forwarded explicitly by name.
    @property
    def expiry(self) -> float:
        return self.channel_layer.expiry

    @property
    def group_expiry(self) -> float:
        return self.channel_layer.group_expiry

    @property
    def capacity(self) -> int:
        return self.channel_layer.capacity

    @property
    def atomic_send_many(self) -> bool:
        return getattr(self.channel_layer, "atomic_send_many", False)

    @property
    def ChannelFull(self) -> type[ChannelFull]:  # noqa: N802 - the ASGI attribute name
        return self.channel_layer.ChannelFull

    @property
    def MessageTooLarge(self) -> type[MessageTooLarge]:  # noqa: N802
        return self.channel_layer.MessageTooLarge

    def send(self, channel: str, message: dict) -> None:
        self.channel_layer.send(channel, message)

    def send_many(self, messages: list[tuple[str, dict]]) -> list[bool]:
        return self.channel_layer.send_many(messages)

    def receive(self, channels: list[str], block: bool = False) -> tuple:
        return self.channel_layer.receive(channels, block=block)

    def receive_many(self, channels: list[str], block: bool = False) -> tuple:
        return self.channel_layer.receive(channels, block=block)

    def receive_batch(self, channels: list[str], limit: int, block: bool = False) -> list:
        return self.channel_layer.receive_batch(channels, limit, block=block)

    def send_then_receive_batch(self, messages: list[tuple[str, dict]], channels: list[str],
                                limit: int, block: bool = False) -> tuple[list[bool], list]:
        layer = self.channel_layer
        if hasattr(layer, "send_then_receive_batch"):
            return layer.send_then_receive_batch(messages, channels, limit, block=block)
        # A third-party (ASGI 1) layer: the same steps with what it has.
        if hasattr(layer, "send_many"):
            flags = layer.send_many(messages) if messages else []
        else:
            flags = send_each(layer.send, messages, getattr(layer, "ChannelFull", ChannelFull))
        if hasattr(layer, "receive_batch"):
            return flags, layer.receive_batch(channels, limit, block=block)
        channel, message = layer.receive(channels, block=block)
        return flags, [] if channel is None else [(channel, message)]

    def new_channel(self, pattern: str) -> str:
        return self.channel_layer.new_channel(pattern)

    def group_add(self, group: str, channel: str) -> None:
        self.channel_layer.group_add(group, channel)

    def group_discard(self, group: str, channel: str) -> None:
        self.channel_layer.group_discard(group, channel)

    def group_channels(self, group: str) -> list[str]:
        return self.channel_layer.group_channels(group)

    def send_group(self, group: str, message: dict) -> None:
        self.channel_layer.send_group(group, message)

    def flush(self) -> None:
        self.channel_layer.flush()

    def global_statistics(self) -> dict:
        return self.channel_layer.global_statistics()

    def channel_statistics(self, channel: str) -> dict:
        return self.channel_layer.channel_statistics(channel)

    def receive_twisted(self, channels: list[str]) -> Any:
        return self.channel_layer.receive_twisted(channels)

    async def send_async(self, channel: str, message: dict) -> None:
        await self.channel_layer.send_async(channel, message)

    async def send_many_async(self, messages: list[tuple[str, dict]]) -> list[bool]:
        return await self.channel_layer.send_many_async(messages)

    async def receive_async(self, channels: list[str]) -> tuple:
        return await self.channel_layer.receive_async(channels)

    async def receive_batch_async(self, channels: list[str], limit: int) -> list:
        return await self.channel_layer.receive_batch_async(channels, limit)

    async def new_channel_async(self, pattern: str) -> str:
        return await self.channel_layer.new_channel_async(pattern)

    async def group_add_async(self, group: str, channel: str) -> None:
        await self.channel_layer.group_add_async(group, channel)

    async def group_discard_async(self, group: str, channel: str) -> None:
        await self.channel_layer.group_discard_async(group, channel)

    async def send_group_async(self, group: str, message: dict) -> None:
        await self.channel_layer.send_group_async(group, message)

    def close(self) -> None:
        self.channel_layer.close()

    def local_only(self) -> bool:
        """True when the layer cannot reach other processes (so e.g. runworker is pointless)."""
        return "inmemory" in type(self.channel_layer).__module__

    def __str__(self) -> str:
        layer_class = type(self.channel_layer)
        return f"{self.alias} ({layer_class.__module__}.{layer_class.__qualname__})"

    def __repr__(self) -> str:
        return f"<ChannelLayerWrapper {self}>"


class ChannelLayerManager:
    """Builds each configured alias on first access and keeps it."""

    def __init__(self) -> None:
        self.backends: dict[str, ChannelLayerWrapper] = {}
        self._lock = threading.Lock()

    @property
    def configs(self) -> dict[str, dict]:
        from django.conf import settings

        return getattr(settings, "CHANNEL_LAYERS", None) or {}

    def _config(self, alias: str) -> dict:
        try:
            config = self.configs[alias]
        except KeyError:
            raise InvalidChannelLayerError(
                f"No channel layer named {alias!r} in settings.CHANNEL_LAYERS"
            ) from None
        if not isinstance(config, dict) or "BACKEND" not in config:
            raise InvalidChannelLayerError(f"CHANNEL_LAYERS[{alias!r}] has no BACKEND")
        if "ROUTING" not in config:
            raise InvalidChannelLayerError(f"CHANNEL_LAYERS[{alias!r}] has no ROUTING")
        return config

    def _build(self, alias: str, config_key: str) -> ChannelLayerWrapper:
        config = self._config(alias)
        if config_key not in config and config_key == "TEST_CONFIG":
            raise InvalidChannelLayerError(f"CHANNEL_LAYERS[{alias!r}] has no TEST_CONFIG")
        backend = import_backend(config["BACKEND"])
        try:
            layer = backend(**(config.get(config_key) or {}))
        except (TypeError, ValueError) as exc:
            raise InvalidChannelLayerError(
                f"CHANNEL_LAYERS[{alias!r}][{config_key!r}] is not valid for "
                f"{config['BACKEND']}: {exc}"
            ) from exc
        return ChannelLayerWrapper(layer, alias, config["ROUTING"])

    def make_backend(self, alias: str) -> ChannelLayerWrapper:
        return self._build(alias, "CONFIG")

    def make_test_backend(self, alias: str) -> ChannelLayerWrapper:
        return self._build(alias, "TEST_CONFIG")

    def __getitem__(self, alias: str) -> ChannelLayerWrapper:
        with self._lock:
            if alias not in self.backends:
                self.backends[alias] = self.make_backend(alias)
            return self.backends[alias]

    def __contains__(self, alias: str) -> bool:
        return alias in self.configs

    def set(self, alias: str, layer: ChannelLayerWrapper | None) -> ChannelLayerWrapper | None:
        """Swap the layer of an alias (test cases do this) and return the previous one."""
        with self._lock:
            old = self.backends.get(alias)
            if layer is None:
                self.backends.pop(alias, None)
            else:
                self.backends[alias] = layer
            return old


def get_channel_layer(alias: str = DEFAULT_CHANNEL_LAYER) -> Any:
    """The raw layer of ``alias``, for deploy modules (``myproject/asgi.py``) and servers."""
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup(set_prefix=False)
    return channel_layers[alias].channel_layer


channel_layers = ChannelLayerManager()
