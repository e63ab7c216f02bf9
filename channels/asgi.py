"""The layer registry: ``CHANNEL_LAYERS`` aliases turned into layer objects, built once each."""

from __future__ import annotations

import importlib
import threading
from typing import Any

from channels import DEFAULT_CHANNEL_LAYER
from channels.layers.base import ChannelFull, send_each
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
    """A layer plus its alias and routing, as the Django side sees it.

    Everything that is not the wrapper's own (``channel_layer``, ``alias``, ``routing``,
    ``router``, ``local_only()``, the required ``send``/``receive``/``new_channel`` and the
    helpers below) is the backend's: ``group_add``, ``ChannelFull``, but also its settings
    (``expiry``, ``group_expiry``, ``channel_capacity``, ``hosts``) and any method of its own.
    Channels 1.1 code reads all of these through ``channel_layers[alias]`` and
    ``message.channel_layer``. Passing attributes through (rather than forwarding a fixed list)
    also keeps ``hasattr`` truthful, so optional extensions (``send_async``, ``receive_batch``)
    are only seen where the backend has them.
    """

    def __init__(self, channel_layer: Any, alias: str, routing: Any) -> None:
        self.channel_layer = channel_layer
        self.alias = alias
        self._routing = routing
        self._router: Router | None = None

    def __getattr__(self, name: str) -> Any:
        # Only reached for names the wrapper itself lacks. Dunder probes (copy, pickle) and
        # ``channel_layer`` itself (before __init__ ran) must not recurse into the backend.
        if name.startswith("__") or name == "channel_layer":
            raise AttributeError(name)
        return getattr(self.channel_layer, name)

    @property
    def routing(self) -> Any:
        return self._routing

    @routing.setter
    def routing(self, routing: Any) -> None:
        # Channels 1.1 test helpers assign ``routing`` (and ``router``) on the wrapper; a new
        # routing means a new router.
        self._routing = routing
        self._router = None

    @property
    def router(self) -> Router:
        # Built on first use: a project's routing module imports its consumers, which import
        # channels (and so this registry), so it can only be loaded once they are importable.
        if self._router is None:
            self._router = Router(self._routing)
        return self._router

    @router.setter
    def router(self, router: Router) -> None:
        self._router = router

    # The three methods every ASGI layer must have, spelled out: they are the hot path (no
    # ``__getattr__`` round per message), and subclasses may extend them with ``super()``.
    def send(self, channel: str, message: dict) -> None:
        self.channel_layer.send(channel, message)

    def receive(self, channels: list[str], block: bool = False) -> tuple:
        return self.channel_layer.receive(channels, block=block)

    def new_channel(self, pattern: str) -> str:
        return self.channel_layer.new_channel(pattern)

    def receive_many(self, channels: list[str], block: bool = False) -> tuple:
        """The pre-1.0 name of ``receive`` that Channels 1.1 code still calls; works on
        backends that never had it."""
        return self.channel_layer.receive(channels, block=block)

    def send_then_receive_batch(self, messages: list[tuple[str, dict]], channels: list[str],
                                limit: int, block: bool = False) -> tuple[list[bool], list]:
        """Replies of the last message and the next receive, in one round trip where the
        backend can (the worker uses this); the same steps one by one where it cannot."""
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
