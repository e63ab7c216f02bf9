"""The message a consumer receives.

The buffer of sends made while a consumer runs lives in ``channels.pending``; its names are
imported here too, where Channels 1.1 kept them.
"""

from __future__ import annotations

import copy
from collections.abc import ItemsView, Iterator, KeysView, ValuesView
from typing import Any

from channels.channel import Channel
from channels.pending import PendingMessageStore, PendingSendLimitExceeded, pending_message_store

__all__ = ["Message", "PendingMessageStore", "PendingSendLimitExceeded", "pending_message_store"]


class Message:
    """One received message: its content plus the channel (and layer) it came from.

    Decorators hang state on it (``channel_session``, ``http_session``, ``user``), which is why it
    is a plain object and not a dict subclass.
    """

    def __init__(self, content: dict[str, Any], channel_name: str, channel_layer: Any) -> None:
        self.content = content
        self.channel_layer = channel_layer
        self.channel = Channel(channel_name, channel_layer=channel_layer)
        reply_channel = content.get("reply_channel")
        self.reply_channel: Channel | None = (
            Channel(reply_channel, channel_layer=channel_layer) if reply_channel else None
        )

    def __getitem__(self, key: str) -> Any:
        return self.content[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.content[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self.content

    def __iter__(self) -> Iterator[str]:
        return iter(self.content)

    def keys(self) -> KeysView[str]:
        return self.content.keys()

    def values(self) -> ValuesView[Any]:
        return self.content.values()

    def items(self) -> ItemsView[str, Any]:
        return self.content.items()

    def get(self, key: str, default: Any = None) -> Any:
        return self.content.get(key, default)

    def copy(self) -> Message:
        """A copy whose content can be changed without touching this message (``include``)."""
        return self.__class__(copy.deepcopy(self.content), self.channel.name, self.channel_layer)

    def __repr__(self) -> str:
        return f"<Message on {self.channel.name!r} keys={sorted(self.content)}>"
