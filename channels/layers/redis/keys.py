"""Where things live in Redis: the consistent-hash ring over shards, and the key names.

Queue keys: ``<prefix><channel>`` for normal and ``?`` channels, ``<prefix><process prefix>``
(the name up to ``!``) for every process-specific channel of that process. A process queue has
a companion hash ``<prefix>#c:<process prefix>`` counting entries per full channel name, which
is what per-socket capacity is checked against; it is deleted whenever its queue is found
empty, which undoes any drift left by a count update that never came. Statistics: hash
``<prefix>#s:<queue name>`` and the shard-wide ``<prefix>#s``. Groups: sorted set
``<prefix>#g:<group>``, score = time of the last ``group_add``, and hash ``<prefix>#p:<group>``
placing each member (its shard and capacity, so a group send needs no round trip to look them
up). ``#`` never occurs in channel or group names, so no key can collide.
"""

from __future__ import annotations

import zlib

from channels.layers.base import is_process_channel, non_local_name

#: Buckets of the hash ring: a name hashes to one, and the buckets are split evenly over the
#: shards, so a given name is always on the same shard for a given list of hosts.
RING_BUCKETS = 4096


def glob_escape(text: str) -> str:
    """``text`` matched literally by a Redis ``SCAN MATCH`` pattern."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


class KeyNames:
    """Shards and key names of a layer (a part of :class:`RedisChannelLayer`).

    Relies on the layer's ``prefix`` and ``ring_size`` (number of shards).
    """

    prefix: str
    ring_size: int

    def _shard_of(self, name: str) -> int:
        """Consistent hash: a ``!`` channel by its process prefix, anything else by name."""
        if self.ring_size == 1:
            return 0
        bucket = zlib.crc32(non_local_name(name).encode("ascii")) & (RING_BUCKETS - 1)
        return bucket * self.ring_size // RING_BUCKETS

    def _queue_key(self, name: str) -> str:
        return self.prefix + non_local_name(name)

    def _counts_key(self, name: str) -> str:
        return self.prefix + "#c:" + non_local_name(name) if is_process_channel(name) else ""

    def _stats_key(self, name: str) -> str:
        return self.prefix + "#s:" + non_local_name(name)

    def _group_key(self, group: str) -> str:
        return self.prefix + "#g:" + group

    def _placement_key(self, group: str) -> str:
        return self.prefix + "#p:" + group

    @property
    def _global_stats_key(self) -> str:
        return self.prefix + "#s"
