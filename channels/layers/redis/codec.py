"""Queue entries: msgpack messages, optionally Fernet-encrypted, framed with their deadline.

An entry (a list element) is laid out as::

    14 ASCII digits   deadline, milliseconds since the epoch (sender's clock)
    1 byte            n = length of the full channel name
    n bytes           full channel name (so one list can hold every ``prefix!*`` channel)
    rest              payload: msgpack, or a Fernet token of it

The Lua scripts read the same layout (``lua/common.lua``), so a group send frames each member's
entry inside Redis from one payload.
"""

from __future__ import annotations

import base64
import hashlib
import math
import time
from collections.abc import Sequence
from typing import Any

from channels.layers.base import deserialize_message, logger


def fernet_keys(keys: Any) -> Any:
    """A ``MultiFernet`` of ``symmetric_encryption_keys`` (the first encrypts, all decrypt);
    None without keys."""
    if keys is None:
        return None
    if isinstance(keys, (str, bytes)) or not isinstance(keys, Sequence) or not keys:
        raise ValueError("symmetric_encryption_keys must be a non-empty list of secrets")
    from cryptography.fernet import Fernet, MultiFernet

    fernets = []
    for key in keys:
        if isinstance(key, str):
            key = key.encode("utf8")
        # Any secret works: hash it to the 32 bytes Fernet needs.
        fernets.append(Fernet(base64.urlsafe_b64encode(hashlib.sha256(key).digest())))
    return MultiFernet(fernets)


def entry_channel(entry: bytes) -> str:
    """The full channel name framed in a queue entry ('' if the entry is not one of ours)."""
    try:
        return entry[15:15 + entry[14]].decode("ascii")
    except (IndexError, UnicodeDecodeError):
        return ""


def frame_entry(deadline: bytes, channel: str, payload: bytes) -> bytes:
    """An entry for ``channel`` from its 14-digit ``deadline`` and encoded ``payload``."""
    name = channel.encode("ascii")
    return deadline + bytes((len(name),)) + name + payload


class EntryCodec:
    """Message <-> entry (a part of :class:`RedisChannelLayer`).

    Relies on the layer's ``serialize`` (the shared checks and size limit), ``expiry`` and
    ``_fernet`` (from :func:`fernet_keys`).
    """

    expiry: float
    _fernet: Any

    def _encode(self, message: Any) -> bytes:
        payload = self.serialize(message)
        if self._fernet is not None:
            payload = self._fernet.encrypt(payload)
        return payload

    def _deadline_ms(self, now_ms: int) -> bytes:
        return b"%014d" % (now_ms + int(self.expiry * 1000))

    def _ttl(self) -> int:
        """TTL of a queue key: outlives its newest entry's deadline."""
        return math.ceil(self.expiry) + 1

    def _decode_entry(self, entry: bytes) -> tuple[str, dict] | None:
        """``(channel, message)`` of a live entry; None if it expired or cannot be read."""
        channel = entry_channel(entry)
        try:
            if int(entry[:14]) <= time.time() * 1000:
                return None
            payload = entry[15 + entry[14]:]
            if self._fernet is not None:
                payload = self._fernet.decrypt(payload)
            return channel, deserialize_message(payload)
        except Exception as exc:  # wrong key, tampering, another writer's format: never deliver
            if type(exc).__name__ == "InvalidToken":
                logger.error("dropping a message on %s that none of symmetric_encryption_keys "
                             "decrypts (a sender with another key, or tampering)", channel)
            else:
                logger.warning("dropping an unreadable message on %r: %s", channel, exc,
                               exc_info=True)
            return None

    def _decode_all(self, entries: list[bytes]) -> list[tuple[str, dict]]:
        decoded = (self._decode_entry(entry) for entry in entries)
        return [item for item in decoded if item is not None]
