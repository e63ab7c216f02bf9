"""Connections of the Redis layer's hot path: one per thread and shard for the synchronous
API (:class:`ThreadConnections`), a free list per event loop and shard for the asyncio one
(:class:`LoopConnections`).

redis-py's client takes a connection from its pool and gives it back around every command
(a lock, a poll for unread data, metrics bookkeeping). On the development VM that cost as much
client CPU as the command's own socket I/O: 76-96 µs a command through ``Redis.execute_command``
against 38-57 µs on a connection held by the caller (docs/layers.md). A thread runs one command
at a time, so a connection of its own needs none of that bookkeeping; the connections are made
exactly as the pool would make them (same class and options, so TLS, auth, Sentinel and
``connection_kwargs`` all apply), and redis-py still does the wire protocol and parsing. The
commands of one event loop all run in one thread too, so its free list needs no lock either.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import Sequence
from typing import Any

import redis

#: Commands are packed by hiredis's C packer, called directly: redis-py's asyncio connections
#: pack in Python, and its synchronous ones wrap the same C packer in a generator that
#: re-checks every argument (our commands are tuples of str, bytes, int and float); either
#: costs a few percent of a server's or a worker's CPU. Without hiredis, redis-py packs.
try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # pragma: no cover - hiredis (3.0+) is a dependency; kept optional here
    _hiredis_pack = None


def _pack(conn: Any, commands: Sequence[Sequence[Any]]) -> list[bytes]:
    """The wire form of ``commands``, for one write on ``conn``."""
    if _hiredis_pack is None:
        if len(commands) == 1:
            return conn.pack_command(*commands[0])
        return conn.pack_commands(commands)
    try:
        packed = [_hiredis_pack(command if type(command) is tuple else tuple(command))
                  for command in commands]
    except TypeError as exc:  # what redis-py raises for an argument it cannot send
        raise redis.exceptions.DataError(str(exc)) from exc
    # One buffer: redis-py's blocking connection makes a sendall() per item, and a pipeline
    # sent as several writes costs a system call each and can reach Redis as several reads.
    return packed if len(packed) == 1 else [b"".join(packed)]


def _mark_maybe_written(exc: BaseException) -> None:
    """A connection error or timeout after the command went out: Redis may have run it.

    The layer turns these errors into ``LayerUnavailable``; this flag (copied onto it) tells a
    caller that retries on ``LayerUnavailable`` that a retry could run the command twice.
    """
    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        exc.maybe_written = True  # type: ignore[attr-defined]


class ThreadConnections:
    """Per-thread connections to each shard, outside the shards' pools."""

    def __init__(self, pools: Sequence[Any]) -> None:
        self._pools = list(pools)
        self._local = threading.local()
        # Every connection made, so close() can reach those of other threads too; weak, so a
        # thread that ends takes its connections with it (redis-py closes them when collected).
        self._made: weakref.WeakSet = weakref.WeakSet()
        self._lock = threading.Lock()

    def connection(self, shard: int) -> Any:
        local = self._local
        pid = os.getpid()
        if getattr(local, "pid", None) != pid:
            # New thread, or a forked child: never share a socket with the parent process.
            local.pid = pid
            local.by_shard = {}
            local.scripted = set()
        conn = local.by_shard.get(shard)
        if conn is None:
            pool = self._pools[shard]
            conn = local.by_shard[shard] = pool.connection_class(**pool.connection_kwargs)
            with self._lock:
                self._made.add(conn)
        return conn

    def call(self, shard: int, *args: Any) -> Any:
        """Run one command on this thread's connection to ``shard``; the raw reply."""
        [reply] = self.pipeline(shard, [args])
        if isinstance(reply, redis.exceptions.ResponseError):
            raise reply
        return reply

    def pipeline(self, shard: int, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Several commands in one write; their replies in order, an error reply as its
        ``ResponseError`` (so one bad command cannot hide the others' results).

        An error reply leaves the connection usable; anything else (a dropped connection, a
        timeout, an interrupt half-way) leaves it in an unknown state, so it is closed and the
        next call connects afresh.
        """
        conn = self.connection(shard)
        if conn._sock is not None:  # redis-py's own "connected" test, stable across versions
            # As the pool does on every checkout (a ~1 µs poll): a connection the server closed
            # while it sat idle (a restart, a proxy's cut) is replaced before the command goes
            # out, so the command is sent once, on a live connection. Failing after the write
            # instead would leave the caller unsure whether it ran.
            try:
                stale = conn.can_read(timeout=0)
            except (redis.exceptions.ConnectionError, OSError):
                stale = True
            if stale:
                conn.disconnect()
        if conn._sock is None:
            # connect() explicitly, as the pool does: a Sentinel-managed connection finds its
            # master there, while the implicit connect of send_command would go to its default
            # address (redis-py 8).
            self._local.scripted.discard(shard)
            conn.connect()
        replies: list[Any] = []
        sent = False
        try:
            conn.send_packed_command(_pack(conn, commands))
            sent = True
            for _ in commands:
                try:
                    replies.append(conn.read_response())
                except redis.exceptions.ResponseError as exc:
                    replies.append(exc)
        except BaseException as exc:
            conn.disconnect()
            if sent:
                _mark_maybe_written(exc)
            raise
        return replies

    def scripts_known(self, shard: int) -> bool:
        """Whether this thread's connection to ``shard`` has run one of the layer's scripts
        since it connected, so the server has them (a restart or a failover means a new
        connection; only an explicit ``SCRIPT FLUSH`` gets past this)."""
        return shard in getattr(self._local, "scripted", ())

    def mark_scripts_known(self, shard: int) -> None:
        """After a script ran on this thread's connection (whose state ``call`` set up)."""
        self._local.scripted.add(shard)

    def close(self) -> None:
        """Disconnect every thread's connections (a later call reconnects)."""
        with self._lock:
            made = list(self._made)
        for conn in made:
            conn.disconnect()


class LoopConnections:
    """The connections of one event loop, one command (or pipeline) at a time on each.

    As many are open as commands are in flight at once on a shard (at most ``max_active``,
    blocking pops aside); of those, at most ``max_idle`` are kept for reuse, the rest closed.

    redis-py's asyncio pool takes an ``asyncio.Lock`` twice and records metrics on every
    checkout and return; the commands of one loop all run in one thread, so a free list needs
    no lock at all. Idle connections the server closed are noticed without a system call (the
    loop has already seen their end of stream) and replaced before anything is written.
    """

    #: Idle connections kept for reuse, per shard: as many as may be busy at once, so a
    #: steady load of N concurrent commands reuses N connections instead of closing and
    #: reopening (a handshake each: three round trips) all but a few after every burst.
    max_idle = 64
    #: Commands in flight at once per shard, blocking pops not counted (each has a connection
    #: of its own, or a few waiting receivers could hold every connection for their whole
    #: timeout). More wait their turn, in order: without a bound a burst of N sends (N sockets
    #: speaking at once) opened N connections, each with its own handshake, up to Redis's
    #: ``maxclients``. A pool ``max_connections`` below this lowers it (blocking pops come on
    #: top of it, so it is not a cap on connections as a whole).
    max_active = 64

    def __init__(self, pools: Sequence[Any]) -> None:
        self._pools = list(pools)
        self._idle: list[list[Any]] = [[] for _ in self._pools]
        self._made: set[Any] = set()
        self._slots = [asyncio.Semaphore(min(self.max_active,
                                             getattr(pool, "max_connections", None)
                                             or self.max_active))
                       for pool in self._pools]
        # The pools' socket_timeout bounds, each on its own, the wait for a slot, a connection's
        # handshake and a call's exchange here, and the connections are made without it:
        # redis-py would wrap every write in ``asyncio.wait_for`` (a task of its own: three
        # passes of the event loop per command) and every read in a timeout of its own.
        self._timeouts: list[float | None] = []
        self._connection_kwargs: list[dict[str, Any]] = []
        for pool in self._pools:
            kwargs = dict(pool.connection_kwargs)
            self._timeouts.append(kwargs.get("socket_timeout"))
            kwargs["socket_timeout"] = None
            self._connection_kwargs.append(kwargs)

    async def _take(self, shard: int) -> Any:
        idle = self._idle[shard]
        while idle:
            conn = idle.pop()
            try:
                if conn.is_connected and not await conn.can_read():
                    return conn
            except (redis.exceptions.ConnectionError, OSError):
                pass
            await self._drop(conn)
        conn = self._pools[shard].connection_class(**self._connection_kwargs[shard])
        self._made.add(conn)
        try:
            # Explicitly: a Sentinel-managed one finds its master here. Bounded as a whole:
            # redis-py bounds the TCP connect by socket_connect_timeout, but its handshake
            # (HELLO, CLIENT SETINFO) reads without a timeout on these connections.
            await _bounded(conn.connect(), self._timeouts[shard], "connection to")
        except BaseException:
            await self._drop(conn)
            raise
        return conn

    async def _drop(self, conn: Any) -> None:
        self._made.discard(conn)
        try:
            await conn.disconnect(nowait=True)
        except Exception:  # noqa: BLE001 - it is being thrown away either way
            pass

    async def call(self, shard: int, *args: Any, blocking: bool = False) -> Any:
        """One command; its raw reply (an error reply raises ``ResponseError``)."""
        [reply] = await self.pipeline(shard, [args], blocking=blocking)
        if isinstance(reply, redis.exceptions.ResponseError):
            raise reply
        return reply

    async def pipeline(self, shard: int, commands: Sequence[Sequence[Any]],
                       blocking: bool = False) -> list[Any]:
        """Several commands in one write; their replies in order, an error reply as its
        ``ResponseError`` (so one bad command cannot hide the others' results).

        ``blocking``: the commands may wait in Redis (a blocking pop), so they do not count
        against ``max_active``. A connection interrupted half-way (cancelled, timed out,
        dropped) is closed, never reused: its next reply would belong to the command that was
        interrupted.
        """
        if blocking:
            return await self._run(shard, commands)
        slots = self._slots[shard]
        # Waiting for a slot counts against the same bound: behind a shard that stopped
        # answering, queued commands fail within socket_timeout too, not in waves of
        # max_active (and nothing was written, so they may be retried).
        if slots.locked():
            await _bounded(slots.acquire(), self._timeouts[shard], "free connection to")
        else:
            await slots.acquire()  # free: returns at once
        try:
            return await self._run(shard, commands)
        finally:
            slots.release()

    async def _run(self, shard: int, commands: Sequence[Sequence[Any]]) -> list[Any]:
        conn = await self._take(shard)
        sent: list[bool] = []
        try:
            packed = _pack(conn, commands)
            # socket_timeout bounds the exchange (a blocking pop's wait included), as it bounds
            # each read of redis-py's own connections.
            replies = await _bounded(self._exchange(conn, packed, len(commands), sent),
                                     self._timeouts[shard], "answer from")
        except BaseException as exc:
            await self._drop(conn)
            if sent:
                _mark_maybe_written(exc)
            raise
        idle = self._idle[shard]
        if len(idle) < self.max_idle:
            idle.append(conn)
        else:
            await self._drop(conn)
        return replies

    @staticmethod
    async def _exchange(conn: Any, packed: Any, count: int, sent: list[bool]) -> list[Any]:
        await conn.send_packed_command(packed)  # health check: honours health_check_interval
        sent.append(True)
        replies: list[Any] = []
        for _ in range(count):
            try:
                replies.append(await conn.read_response())
            except redis.exceptions.ResponseError as exc:
                replies.append(exc)
        return replies

    async def close(self) -> None:
        """Disconnect every connection, idle or in use (a later call connects afresh)."""
        made, self._made = list(self._made), set()
        self._idle = [[] for _ in self._pools]
        for conn in made:
            try:
                await conn.disconnect()
            except Exception:  # noqa: BLE001 - closing; nothing more to do with it
                pass


async def _bounded(awaitable: Any, timeout: float | None, what: str) -> Any:
    """``await awaitable`` within ``timeout`` seconds (none if ``None``), its expiry raised as
    redis-py's ``TimeoutError`` (which the layer reports as the shard being unavailable)."""
    if timeout is None:
        return await awaitable
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            return await awaitable
    except TimeoutError:
        if not deadline.expired():
            raise
        raise redis.exceptions.TimeoutError(
            f"Timeout: no {what} Redis within socket_timeout ({timeout} s)") from None
