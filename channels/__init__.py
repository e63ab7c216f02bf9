"""Channels: the real-time layer for Django (Channels 1.1 API)."""

__version__ = "1.2.0.dev0"

DEFAULT_CHANNEL_LAYER = "default"
