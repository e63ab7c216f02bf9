"""Channels: the real-time layer for Django, with the Channels 1.1 public API.

The Django-facing names (``Channel``, ``Group``, ``route`` …) are resolved lazily, so that
``channels.layers`` can be imported by a plain Python process that has no Django settings.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "1.2.0.dev0"

DEFAULT_CHANNEL_LAYER = "default"

# Public name -> (module, attribute). Resolved on first access (PEP 562).
_LAZY_EXPORTS: dict[str, tuple[str, str]] = {
    "channel_layers": ("channels.asgi", "channel_layers"),
    "Channel": ("channels.channel", "Channel"),
    "Group": ("channels.channel", "Group"),
    "route": ("channels.routing", "route"),
    "route_class": ("channels.routing", "route_class"),
    "include": ("channels.routing", "include"),
}

__all__ = ["DEFAULT_CHANNEL_LAYER", "__version__", *_LAZY_EXPORTS]


def __getattr__(name: str) -> Any:
    try:
        module_name, attribute = _LAZY_EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'channels' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module_name), attribute)
    globals()[name] = value
    return value
