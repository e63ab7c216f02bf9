"""The contract every channel layer backend shares: names, message values, capacity, errors.

A backend subclasses :class:`BaseChannelLayer` and only says how messages are stored and moved;
everything that decides whether a name or a message is acceptable lives here, so both backends
refuse exactly the same input with exactly the same exception.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import secrets
import string
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import msgpack

logger = logging.getLogger("channels.layers")

#: Longest accepted channel or group name (the layer contract: "at most 100 characters").
MAX_NAME_LENGTH = 100

#: Default size limit of one serialised message. ASGI requires at least 1 MB to be accepted; the
#: margin above that covers msgpack framing of a 1 MB body plus its headers.
DEFAULT_MAX_MESSAGE_SIZE = 2 * 1024 * 1024

#: Default bound on all messages queued for one process prefix (``name!``) together. Per-socket
#: channels are capped by ``capacity``; this only stops a dead server's backlog growing forever,
#: so it is large enough that a group send to thousands of sockets on one server never trips it.
DEFAULT_PROCESS_CAPACITY = 100_000

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

_CHANNEL_RE = re.compile(r"^[a-zA-Z0-9_.\-]+(?:[?!][a-zA-Z0-9_.\-]*)?$")
_GROUP_RE = re.compile(r"^[a-zA-Z0-9_.\-]+$")
_SUFFIX_ALPHABET = string.ascii_letters + string.digits


class ChannelFull(Exception):
    """The channel (or its process prefix) holds as many messages as its capacity allows."""


class MessageTooLarge(Exception):
    """The serialised message is larger than the layer's ``max_message_size``."""


class LayerUnavailable(ConnectionError):
    """The layer's storage cannot be reached.

    Usually (refused, or a dead connection noticed before anything went out) the call wrote
    nothing and may be retried. ``maybe_written`` is true when the storage stopped answering
    after the call was sent (a timeout, a connection lost mid-command): it may have taken
    effect, and a retry may deliver the message twice.
    """

    maybe_written: bool = False


# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------


def _check_name_type(name: Any, kind: str) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{kind} name must be a str, not {type(name).__name__}: {name!r}")


def validate_channel_name(name: Any, receive: bool = False) -> str:
    """Check a channel name and return it.

    ``receive=True`` applies the reader's rule: a process-specific channel is read through its
    process prefix (``"server.abc!"``), never through one full ``prefix!local`` name, because the
    prefix is what the layer queues on.
    """
    _check_name_type(name, "Channel")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"Channel name is {len(name)} characters long, the limit is {MAX_NAME_LENGTH}: "
            f"{name!r}"
        )
    if not _CHANNEL_RE.match(name):
        raise ValueError(
            "Channel name may only hold ASCII letters, digits, '-', '_', '.' and at most one "
            f"'?' or '!' after a non-empty base: {name!r}"
        )
    if "?" in name and name.endswith("?"):
        raise ValueError(
            f"Single-reader channel name needs a suffix after '?' (use new_channel()): {name!r}"
        )
    if receive and "!" in name and not name.endswith("!"):
        raise ValueError(
            "Process-specific channels are received through their prefix ending in '!' "
            f"(e.g. {non_local_name(name)!r}), not through a full name: {name!r}"
        )
    return name


def validate_channel_names(names: Any, receive: bool = True) -> list[str]:
    """Check the channel list given to ``receive``: a non-empty list/tuple/set of names."""
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise TypeError(f"channels must be a list of channel names, not {names!r}")
    checked = [validate_channel_name(name, receive=receive) for name in names]
    if not checked:
        raise ValueError("channels must name at least one channel")
    return checked


def validate_group_name(name: Any) -> str:
    """Group names follow the channel rules without the ``?``/``!`` type characters."""
    _check_name_type(name, "Group")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"Group name is {len(name)} characters long, the limit is {MAX_NAME_LENGTH}: {name!r}"
        )
    if not _GROUP_RE.match(name):
        raise ValueError(
            f"Group name may only hold ASCII letters, digits, '-', '_' and '.': {name!r}"
        )
    return name


def non_local_name(name: str) -> str:
    """The part of a process-specific name up to and including ``!`` (the name itself if none)."""
    if "!" in name:
        return name[: name.index("!") + 1]
    return name


def is_process_channel(name: str) -> bool:
    return "!" in name


def validate_new_channel_pattern(pattern: Any) -> str:
    _check_name_type(pattern, "Channel pattern")
    if not (pattern.endswith("?") or pattern.endswith("!")):
        raise ValueError(f"new_channel() pattern must end with '?' or '!': {pattern!r}")
    base = pattern[:-1]
    if not base or not _GROUP_RE.match(base):
        raise ValueError(
            "new_channel() pattern must be a channel base of ASCII letters, digits, '-', '_', '.' "
            f"followed by '?' or '!': {pattern!r}"
        )
    if len(pattern) + 12 > MAX_NAME_LENGTH:
        raise ValueError(
            f"new_channel() pattern leaves no room for a 12 character suffix within "
            f"{MAX_NAME_LENGTH} characters: {pattern!r}"
        )
    return pattern


def random_suffix(length: int = 12) -> str:
    return "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(length))


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------


def check_message_values(message: Any) -> None:
    """Raise ``TypeError`` naming the path of the first value ASGI does not allow.

    msgpack would accept more (and reject some with unhelpful errors), so the layer checks the
    ASGI value set itself: a message must look the same whichever backend carries it.
    """
    if not isinstance(message, dict):
        raise TypeError(f"Message must be a dict, not {type(message).__name__}: {message!r:.200}")
    # Fast paths (every send pays for this check): a flat message of exactly the plain types
    # in one loop; else a nested one (headers) walked without building the path strings an
    # error message needs. Anything they do not vouch for (an error, or a subclass such as an
    # IntEnum) gets the full, path-naming walk.
    for key, value in message.items():
        kind = type(value)
        if type(key) is not str or (kind not in _PLAIN_TYPES and (
                kind is not int or not _INT64_MIN <= value <= _INT64_MAX)):
            break
    else:
        return
    if _plainly_valid(message):
        return
    _check_value(message, "message")


def _plainly_valid(value: Any) -> bool:
    kind = type(value)
    if kind in _PLAIN_TYPES:
        return True
    if kind is int:
        return _INT64_MIN <= value <= _INT64_MAX
    if kind is list or kind is tuple:
        return all(map(_plainly_valid, value))
    if kind is dict:
        return (all(type(key) is str for key in value)
                and all(map(_plainly_valid, value.values())))
    return False


_PLAIN_TYPES = frozenset({str, bytes, float, bool, type(None)})


def _check_value(value: Any, path: str) -> None:
    if value is None or isinstance(value, (bool, str, bytes, float)):
        return
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise TypeError(f"{path} is an int outside the signed 64-bit range: {value}")
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_value(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"{path} has a key of type {type(key).__name__} ({key!r}); keys must be str"
                )
            _check_value(item, f"{path}[{key!r}]")
        return
    raise TypeError(
        f"{path} is of type {type(value).__name__}, which a channel message cannot carry "
        "(allowed: bytes, str, int, float, bool, None, list, tuple, dict with str keys)"
    )


def serialize_message(message: Any, max_size: int) -> bytes:
    """Check and msgpack a message: the single encoding every backend stores."""
    check_message_values(message)
    payload = msgpack.packb(message, use_bin_type=True)
    if len(payload) > max_size:
        raise MessageTooLarge(
            f"Message is {len(payload)} bytes serialised, the limit is {max_size} bytes"
        )
    return payload


def deserialize_message(payload: bytes) -> dict:
    return msgpack.unpackb(payload, raw=False, strict_map_key=True)


# --------------------------------------------------------------------------------------------
# Capacity
# --------------------------------------------------------------------------------------------


class _Matcher(Protocol):
    def match(self, name: str) -> Any: ...


def compile_capacities(
    channel_capacity: Mapping[Any, int] | None,
) -> list[tuple[_Matcher, int]]:
    """Turn ``{glob-or-compiled-regex: capacity}`` into ordered matchers (first match wins)."""
    compiled: list[tuple[_Matcher, int]] = []
    for pattern, capacity in (channel_capacity or {}).items():
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            raise ValueError(f"channel_capacity for {pattern!r} must be a positive int: "
                             f"{capacity!r}")
        if isinstance(pattern, str):
            compiled.append((re.compile(fnmatch.translate(pattern)), capacity))
        elif hasattr(pattern, "match"):
            compiled.append((pattern, capacity))
        else:
            raise TypeError(
                f"channel_capacity keys must be glob strings or compiled regexes, not {pattern!r}"
            )
    return compiled


# --------------------------------------------------------------------------------------------
# The base class
# --------------------------------------------------------------------------------------------


def send_each(send: Any, messages: Sequence[tuple[str, dict]],
              full_error: type[BaseException]) -> list[bool]:
    """``send_many`` for a layer that only sends one at a time: True where queued, False where
    ``send`` raised ``full_error``; any other error propagates."""
    flags = []
    for channel, message in messages:
        try:
            send(channel, message)
            flags.append(True)
        except full_error:
            flags.append(False)
    return flags


class BaseChannelLayer:
    """Options, checks and aliases common to every backend.

    Subclasses implement ``send``, ``receive``, ``receive_batch``, ``new_channel``, the group,
    flush and statistics methods, and the asyncio variants.
    """

    ChannelFull = ChannelFull
    MessageTooLarge = MessageTooLarge

    extensions: list[str] = ["groups", "flush", "statistics", "twisted", "asyncio"]

    #: Whether ``send_many``/``send_many_async`` to ONE channel is all-or-nothing: every message
    #: is queued or refused as full, or an exception leaves none of them queued. Callers that
    #: retry a failed batch (the server's request coalescing) rely on it; this generic version
    #: sends one by one and cannot promise it for a subclass whose sends may fail part-way.
    atomic_send_many: bool = False

    def __init__(
        self,
        expiry: float = 60,
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: Mapping[Any, int] | None = None,
        process_capacity: int = DEFAULT_PROCESS_CAPACITY,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        blocking_timeout: float = 1.0,
    ) -> None:
        for option, value in (("expiry", expiry), ("group_expiry", group_expiry),
                              ("blocking_timeout", blocking_timeout)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{option} must be a positive number of seconds: {value!r}")
        for option, value in (("capacity", capacity), ("process_capacity", process_capacity),
                              ("max_message_size", max_message_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{option} must be a positive int: {value!r}")
        self.expiry = expiry
        self.group_expiry = group_expiry
        self.capacity = capacity
        self.channel_capacity = compile_capacities(channel_capacity)
        self.process_capacity = process_capacity
        self.max_message_size = max_message_size
        self.blocking_timeout = blocking_timeout

    # -- capacity ---------------------------------------------------------------------------

    def get_capacity(self, channel: str) -> int:
        """Capacity of one channel (a full ``prefix!local`` name counts on its own)."""
        for matcher, capacity in self.channel_capacity:
            if matcher.match(channel):
                return capacity
        return self.capacity

    def group_member_capacity(self, channel: str) -> int:
        """Capacity of a channel as the target of a group send.

        A socket's channel fills only while its interface server is behind on its whole reply
        queue (the server drains every socket of the process in one loop), never because that
        socket is slow: a burst of group messages then overflowed the per-socket default of 100
        and silently lost deliveries (channels#763). So unless ``channel_capacity`` names the
        channel explicitly, a process channel in a group is bounded by ``process_capacity``.
        """
        for matcher, capacity in self.channel_capacity:
            if matcher.match(channel):
                return capacity
        if is_process_channel(channel):
            return max(self.capacity, self.process_capacity)
        return self.capacity

    # -- what each backend provides ------------------------------------------------------------

    def send(self, channel: str, message: dict) -> None:
        raise NotImplementedError

    def receive(self, channels: list[str], block: bool = False) -> tuple:
        raise NotImplementedError

    def send_many(self, messages: Sequence[tuple[str, dict]]) -> list[bool]:
        """Send several messages; True where queued, False where that channel was full.

        For callers with many replies at once (one round trip per shard on Redis). This
        generic version checks everything first, so bad input writes nothing.
        """
        return send_each(self.send, self._checked_pairs(messages), ChannelFull)

    async def send_many_async(self, messages: Sequence[tuple[str, dict]]) -> list[bool]:
        pairs = self._checked_pairs(messages)
        flags = []
        for channel, message in pairs:
            try:
                await self.send_async(channel, message)  # type: ignore[attr-defined]
                flags.append(True)
            except ChannelFull:
                flags.append(False)
        return flags

    def _checked_pairs(self, messages: Any) -> list[tuple[str, dict]]:
        if isinstance(messages, (str, bytes, dict)) or not isinstance(messages, Sequence):
            raise TypeError(f"send_many() takes a list of (channel, message) pairs: "
                            f"{messages!r:.200}")
        for index, pair in enumerate(messages):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"send_many() item {index} is not a (channel, message) pair: "
                                f"{pair!r:.200}")
            validate_channel_name(pair[0])
            self.serialize(pair[1])
        return list(messages)

    def receive_batch(self, channels: list[str], limit: int,
                      block: bool = False) -> list[tuple[str, dict]]:
        raise NotImplementedError

    def send_then_receive_batch(
        self, messages: Sequence[tuple[str, dict]], channels: list[str], limit: int,
        block: bool = False,
    ) -> tuple[list[bool], list[tuple[str, dict]]]:
        """``send_many(messages)``, then ``receive_batch(channels, limit, block)``.

        A worker's shape: the replies of the message it just handled, then the next message.
        Layers that can do both in one round trip do (Redis, when the sends and the channels
        share a shard); the flags say which sends were queued (False: that channel was
        full), and bad input raises before anything is written.
        """
        flags = self.send_many(messages) if messages else []
        return flags, self.receive_batch(channels, limit, block=block)

    async def receive_async(self, channels: list[str]) -> tuple:
        raise NotImplementedError

    def new_channel(self, pattern: str) -> str:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; a no-op where there are none."""

    # -- shared helpers -----------------------------------------------------------------------

    def serialize(self, message: Any) -> bytes:
        return serialize_message(message, self.max_message_size)

    def receive_many(self, channels: list[str], block: bool = False) -> tuple:
        """Deprecated Channels 1 name of :meth:`receive` (it always meant a single message)."""
        warnings.warn("receive_many() is deprecated; use receive()", DeprecationWarning,
                      stacklevel=2)
        return self.receive(channels, block=block)

    def receive_twisted(self, channels: list[str]) -> Any:
        """A Deferred firing ``(channel, message)`` or ``(None, None)``.

        Under Twisted's asyncio reactor this wraps :meth:`receive_async` so the reactor thread
        never blocks; under any other reactor it waits in Twisted's thread pool.
        """
        from twisted.internet import defer, reactor, threads

        validate_channel_names(channels)
        if type(reactor).__name__ == "AsyncioSelectorReactor":
            import asyncio

            return defer.Deferred.fromFuture(
                asyncio.ensure_future(self.receive_async(channels), loop=reactor._asyncioEventloop)
            )
        return threads.deferToThread(self.receive, channels, True)

    def __str__(self) -> str:
        return f"{type(self).__module__}.{type(self).__qualname__}"
