"""redis-py connection classes that count their writes: one write is one round trip (a
pipeline of several commands is one write). Pass as ``connection_kwargs={"connection_class":
...}``; each class counts every connection made with it, so give the layer under test its own."""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio


class CountingConnection(redis.Connection):
    writes = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).writes += 1
        super().send_packed_command(command, check_health)


class CountingAsyncConnection(redis.asyncio.Connection):
    writes = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).writes += 1
        await super().send_packed_command(command, check_health)
