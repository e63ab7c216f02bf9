"""Deprecated home of ``HttpClient`` (Channels 1.0): use ``channels.test.WSClient``."""

import warnings

from channels.test.websocket import WSClient

warnings.warn(
    "channels.test.http is deprecated; use channels.test.WSClient", DeprecationWarning,
    stacklevel=2,
)

HttpClient = WSClient

__all__ = ["HttpClient"]
