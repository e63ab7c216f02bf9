"""What a failed layer call means for a socket, as both protocols answer it.

A layer may raise its own ``ChannelFull`` / ``MessageTooLarge`` classes (ASGI 1 lets each
backend define them), so each check accepts the layer's class as well as ours.
"""

from __future__ import annotations

from typing import Any

from channels.layers.base import ChannelFull, LayerUnavailable, MessageTooLarge


def is_channel_full(channel_layer: Any, exc: BaseException) -> bool:
    """The channel is at capacity: retry for a while, then 503 (HTTP) or 1013 (WebSocket)."""
    return isinstance(exc, ChannelFull) or isinstance(
        exc, getattr(channel_layer, "ChannelFull", ChannelFull)
    )


def may_resend(exc: BaseException) -> bool:
    """The layer was unreachable and wrote nothing: sending again cannot duplicate."""
    return isinstance(exc, LayerUnavailable) and not exc.maybe_written


def is_message_too_large(channel_layer: Any, exc: BaseException) -> bool:
    """Retrying cannot help: the request is refused (HTTP) or the socket closed with 1009."""
    return isinstance(exc, MessageTooLarge) or isinstance(
        exc, getattr(channel_layer, "MessageTooLarge", MessageTooLarge)
    )
