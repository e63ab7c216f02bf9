"""``Channel`` and ``Group``: the objects consumers send with (Channels 1.1 API)."""

from __future__ import annotations

from typing import Any

from channels import DEFAULT_CHANNEL_LAYER
from channels.asgi import channel_layers
from channels.pending import pending_message_store


def _layer_for(alias: str, channel_layer: Any) -> Any:
    if channel_layer is not None:
        return channel_layer
    return channel_layers[alias]


def _text_name(name: str | bytes) -> str:
    if isinstance(name, bytes):
        return name.decode("ascii")
    return name


class Channel:
    """A named channel on a layer; sends inside a consumer wait until the consumer returns."""

    def __init__(
        self, name: str | bytes, alias: str = DEFAULT_CHANNEL_LAYER, channel_layer: Any = None
    ) -> None:
        self.name = _text_name(name)
        self.channel_layer = _layer_for(alias, channel_layer)

    def send(self, content: dict[str, Any], immediately: bool = False) -> None:
        """Send now (outside consumers, or ``immediately``) or when the consumer returns."""
        if not isinstance(content, dict):
            raise TypeError(f"You can only send dicts as content on channels (got {content!r})")
        if immediately or not pending_message_store.active:
            pending_message_store.release_held()
            self.channel_layer.send(self.name, content)
        else:
            pending_message_store.append(self, content)

    @property
    def direct_layer_send(self) -> bool:
        """True when ``send()`` is this class's own, a plain ``channel_layer.send(name, ...)``:
        a worker may then send a buffered reply in one round trip with its next receive. A
        subclass that overrides ``send()`` is always sent through it."""
        return type(self).send is Channel.send

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Channel {self.name!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Channel) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


class Group:
    """A named set of channels; a send reaches every member (a full member misses it)."""

    def __init__(
        self, name: str | bytes, alias: str = DEFAULT_CHANNEL_LAYER, channel_layer: Any = None
    ) -> None:
        self.name = _text_name(name)
        self.channel_layer = _layer_for(alias, channel_layer)

    def add(self, channel: Channel | str) -> None:
        if isinstance(channel, Channel):
            channel = channel.name
        self.channel_layer.group_add(self.name, channel)

    def discard(self, channel: Channel | str) -> None:
        if isinstance(channel, Channel):
            channel = channel.name
        self.channel_layer.group_discard(self.name, channel)

    def channel_names(self) -> list[str]:
        return list(self.channel_layer.group_channels(self.name))

    def send(self, content: dict[str, Any], immediately: bool = False) -> None:
        """Send to every member, now or when the consumer returns (like ``Channel.send``)."""
        # ValueError, not TypeError, as in Channels 1.1.
        if not isinstance(content, dict):
            raise ValueError(f"You can only send dicts as content on groups (got {content!r})")
        if immediately or not pending_message_store.active:
            pending_message_store.release_held()
            self.channel_layer.send_group(self.name, content)
        else:
            pending_message_store.append(self, content)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Group {self.name!r}>"
