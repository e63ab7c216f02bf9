"""Redis channel layer: many processes on many machines, sharded over several Redis servers.

Every operation is planned once (which shard, which Lua script, which keys and arguments) and
then run by a thread's own connection or, from an event loop, by that loop's own
``redis.asyncio`` connections, so both APIs behave identically. Modules, one concern each:

- ``layer``: :class:`RedisChannelLayer` (options, shard clients), ``RedisLocalChannelLayer``
- ``sync_api`` / ``async_api``: the synchronous and the asyncio methods
- ``plans``: the script calls and commands of each operation
- ``keys``: the consistent-hash ring and the key names (the data model in Redis)
- ``codec``: queue entries (msgpack, optional Fernet encryption, framing)
- ``stash``: entries popped for a caller that had already returned
- ``errors``: ``RedisLayerUnavailable`` and how shard failures are survived
- ``stats``: ``global_statistics`` / ``channel_statistics``
- ``connections``: the per-thread and per-event-loop connections of the hot path
- ``scripts``: the Lua scripts in ``lua/``
- ``sentinel``: :class:`RedisSentinelChannelLayer`
"""

from channels.layers.redis.errors import RedisLayerUnavailable
from channels.layers.redis.layer import RedisChannelLayer, RedisLocalChannelLayer
from channels.layers.redis.sentinel import RedisSentinelChannelLayer

__all__ = [
    "RedisChannelLayer",
    "RedisLayerUnavailable",
    "RedisLocalChannelLayer",
    "RedisSentinelChannelLayer",
]
