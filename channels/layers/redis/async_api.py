"""The asyncio API of the Redis layer: the interface server's, on its reactor's event loop.

redis.asyncio connections belong to one event loop, so each loop that uses the layer gets its
own clients and connections (:class:`LoopState`), made on first use and released by
``close_async()``. Nothing here blocks the loop. Pops run as tasks of their own, so an entry
Redis hands over while a receive is being cancelled lands in the stash instead of vanishing.
"""

from __future__ import annotations

import asyncio
import random
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from channels.layers.base import (
    ChannelFull,
    is_process_channel,
    logger,
    random_suffix,
    validate_channel_name,
    validate_group_name,
    validate_new_channel_pattern,
)
from channels.layers.redis.connections import LoopConnections
from channels.layers.redis.errors import RedisLayerUnavailable
from channels.layers.redis.plans import check_limit
from channels.layers.redis.scripts import SCRIPTS
from channels.layers.redis.stash import set_woken

#: Longest time (seconds) the per-socket counts of entries an asyncio blocking pop took stay
#: high: the update normally rides along with the next pop on that shard, in the same write.
UNCOUNT_DELAY = 0.05
#: Commands that may wait in Redis: their connections are not counted as busy ones.
_BLOCKING = frozenset({"BLMPOP", "BLPOP"})


@dataclass
class LoopState:
    """The asyncio clients of one event loop (redis.asyncio connections belong to one loop)."""

    clients: list
    scripts: dict
    # The hot path's connections (send, receive, group send); everything else uses clients.
    conns: LoopConnections
    inflight: dict = field(default_factory=dict)
    # Non-blocking pops whose caller was cancelled while Redis was answering: what they bring
    # back goes to the stash.
    orphans: set = field(default_factory=set)
    # Timer-sent per-socket count updates in flight (awaited by close_async, never by a
    # receive: that would put the round trip back).
    uncounting: set = field(default_factory=set)
    # Per shard: per-socket count updates owed for entries a blocking pop took, sent in the
    # same write as that shard's next pop (or by a timer, UNCOUNT_DELAY later at most).
    uncounts: dict = field(default_factory=dict)
    uncount_timers: set = field(default_factory=set)
    # Channel lists whose last non-blocking pop found nothing: their next receive goes
    # straight to the blocking pop, which answers at once anyway if something arrived.
    idle: set = field(default_factory=set)


class AsyncAPI:
    """The layer's coroutine methods (a part of :class:`RedisChannelLayer`).

    Relies on the layer's plans, stash, shard failures and ``_make_async_client``. Holds
    ``_async``: each event loop's :class:`LoopState`, dropped with the loop.
    """

    blocking_timeout: float
    ring_size: int
    _async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopState]

    def _init_async_api(self) -> None:
        self._async = weakref.WeakKeyDictionary()

    # -- event-loop state ------------------------------------------------------------------

    def _loop_state(self) -> LoopState:
        loop = asyncio.get_running_loop()
        state = self._async.get(loop)
        if state is None:
            clients = [self._make_async_client(i) for i in range(self.ring_size)]
            scripts = {name: clients[0].register_script(source)
                       for name, source in SCRIPTS.items()}
            conns = LoopConnections([client.connection_pool for client in clients])
            state = self._async[loop] = LoopState(clients, scripts, conns)
        return state

    async def close_async(self) -> None:
        """Release the connections this event loop opened (call from that loop).

        Blocking pops still in flight end first (within ``blocking_timeout``), and anything
        they or earlier pops took for callers that had gone is handed back to Redis.
        """
        state = self._async.pop(asyncio.get_running_loop(), None)
        if state is not None:
            # Cancelling a blocking pop could drop an entry Redis already handed over: let the
            # pops end (within blocking_timeout); what they take stays in the stash.
            pending = [*state.inflight.values(), *state.orphans, *state.uncounting]
            if pending:
                await asyncio.wait(pending)
            for shard in list(state.uncounts):
                await self._send_uncounts(state, shard)
            for shard, channel, commands in self._stash_return_plan():
                try:
                    pipe = state.clients[shard].pipeline(transaction=False)
                    for command in commands:
                        pipe.execute_command(*command)
                    await pipe.execute()
                except redis.exceptions.RedisError:
                    logger.warning("could not return a received message on %s to Redis",
                                   channel)
            await state.conns.close()
            for client in state.clients:
                await client.aclose()

    # -- sends -----------------------------------------------------------------------------

    async def send_async(self, channel: str, message: dict) -> None:
        shard, args = self._send_plan(channel, message)
        state = self._loop_state()
        with self._guard(shard):
            queued = await self._evalsha_args_async(state, shard, "send", args)
        if not queued:
            raise ChannelFull(channel)

    async def send_many_async(self, messages: Sequence[tuple[str, dict]]) -> list[bool]:
        """:meth:`send_many` from an event loop: one call per shard, run concurrently."""
        plans = self._send_many_plans(messages)
        state = self._loop_state()
        flags = [False] * len(messages)

        async def push(shard: int, indexes: list[int], keys: list, args: list) -> None:
            with self._guard(shard):
                queued = await self._evalsha_args_async(state, shard, "push",
                                                        [len(keys), *keys, *args])
            for index, ok in zip(indexes, queued, strict=True):
                flags[index] = bool(ok)

        results = await asyncio.gather(*(push(shard, *plan) for shard, plan in plans.items()),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return flags

    async def send_group_async(self, group: str, message: dict) -> None:
        payload, deadline, now_ms = self._group_send_plan(group, message)
        shard = self._shard_of(group)
        state = self._loop_state()
        with self._guard(shard):
            keys, args = self._group_send_call(group, shard, payload, deadline, now_ms)
            reply = await self._evalsha_args_async(state, shard, "group_send",
                                                   [len(keys), *keys, *args])

        async def push(other: int, keys: list, args: list) -> None:
            try:
                with self._guard(other):
                    await self._evalsha_args_async(state, other, "push",
                                                   [len(keys), *keys, *args])
            except RedisLayerUnavailable as exc:
                self._group_shard_missed(group, other, exc)

        plans = self._remote_plans(reply, payload, deadline, now_ms)
        await asyncio.gather(*(push(other, keys, args)
                               for other, (keys, args) in plans.items()))

    # -- receives --------------------------------------------------------------------------

    async def receive_async(self, channels: list[str]) -> tuple:
        batch = await self.receive_batch_async(channels, 1)
        return batch[0] if batch else (None, None)

    async def receive_batch_async(self, channels: list[str],
                                  limit: int) -> list[tuple[str, dict]]:
        queues, by_shard = self._receive_plan(channels)
        check_limit(limit)
        state = self._loop_state()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.blocking_timeout
        plan_key = tuple(queues)
        while True:
            if state.orphans:  # they may be bringing this caller's messages
                await asyncio.wait(list(state.orphans), timeout=max(deadline - loop.time(), 0))
            received = self._take_stash(queues, limit)
            if received:
                if len(received) >= limit > 1:  # busy again: a script pop takes more at once
                    state.idle.discard(plan_key)
                return received
            usable = self._usable(by_shard)
            # Replies trickling in (a server's usual case) would cost a non-blocking pop that
            # comes back empty before every blocking one: skip it while the channels are idle.
            if len(usable) != 1 or plan_key not in state.idle:
                # The pop runs as a task of its own: if this caller is cancelled while Redis is
                # answering, the entries it already popped go to the stash instead of
                # vanishing with the cancelled read.
                pop = asyncio.ensure_future(self._pop_async(state, usable, limit))
                try:
                    received = self._decode_all(await asyncio.shield(pop))
                except asyncio.CancelledError:
                    self._adopt_orphan(state, pop)
                    raise
                if received:
                    state.idle.discard(plan_key)
                    return received
                if len(state.idle) >= 1000:
                    state.idle.clear()
                state.idle.add(plan_key)
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            # The blocking pops run as tasks of their own, which outlive a caller that is
            # cancelled mid-wait: an entry Redis hands over at that instant lands in the stash
            # instead of vanishing with a cancelled command.
            await self._wait_any_shard_async(state, usable, remaining,
                                             limit if len(usable) == 1 else 1)

    def _adopt_orphan(self, state: LoopState, pop: asyncio.Future) -> None:
        if pop.done():
            if not pop.cancelled() and pop.exception() is None:
                for entry in pop.result():
                    self._stash_entry(entry)
            return
        state.orphans.add(pop)

        def finished(done: asyncio.Future) -> None:
            state.orphans.discard(done)
            if not done.cancelled() and done.exception() is None:
                for entry in done.result():
                    self._stash_entry(entry)

        pop.add_done_callback(finished)

    async def _pop_async(self, state: LoopState, by_shard: dict[int, list[str]],
                         limit: int) -> list[bytes]:
        """Raw entries, at least one of them live if any are (decoded by the caller)."""
        received: list[bytes] = []
        errors: list[BaseException] = []
        shards = list(by_shard)
        random.shuffle(shards)
        for shard in shards:
            try:
                received += await self._pop_shard_async(state, shard, by_shard[shard],
                                                        limit - len(received))
            except RedisLayerUnavailable as exc:
                errors.append(exc)
                self._mark_down(shard, exc)
                continue
            if len(received) >= limit:
                break
        self._raise_if_all_failed(errors, len(shards))
        return received

    async def _pop_shard_async(self, state: LoopState, shard: int, queues: list[str],
                               limit: int) -> list[bytes]:
        with self._guard(shard):
            if self._native_pop_for(queues):
                keys = self._shuffled_keys(queues)
                try:
                    while True:
                        popped = await self._pop_call_async(
                            state, shard, ("LMPOP", len(keys), *keys, "LEFT", "COUNT", limit))
                        if popped is None:
                            return []
                        now_ms = time.time() * 1000
                        # Only expired entries: look behind them (unreadable ones count as
                        # live here and are dropped when decoded).
                        if any(not entry[:14].isdigit() or int(entry[:14]) > now_ms
                               for entry in popped[1]):
                            return popped[1]
                except redis.exceptions.ResponseError as exc:
                    self._native_unsupported(exc)
            keys, args = self._pop_plan(queues, limit)
            command = ("EVALSHA", state.scripts["pop"].sha, len(keys), *keys, *args)
            try:
                return await self._pop_call_async(state, shard, command)
            except redis.exceptions.NoScriptError:
                return await self._evalsha_args_async(state, shard, "pop",
                                                      [len(keys), *keys, *args])

    async def _block_pop_async(self, state: LoopState, shard: int, queues: list[str],
                               limit: int, timeout: float) -> list[bytes]:
        """Blocking pop; the entries come back at once.

        Entries of process channels owe an update of their per-socket counts. It is not sent
        as a command of its own (a second round trip per reply, on a server's busiest path)
        but in the same write as the next pop on this shard, or by a timer after
        ``UNCOUNT_DELAY``; until then the counts are high by what is in flight, which makes a
        send wait its turn (``ChannelFull``) and does not drift (``lua/common.lua``). One
        corner: a send that finds such a socket "full" while its process queue is in fact
        empty resets the counts, and the late update then leaves them low by what was in
        flight (at most one batch), so that socket may hold that many more than its capacity
        until its queue next drains.
        """
        keys = self._shuffled_keys(queues)
        timeout = max(timeout, 0.01)
        with self._guard(shard):
            entries: list[bytes] = []
            if self._native_pop:
                try:
                    popped = await self._pop_call_async(
                        state, shard, ("BLMPOP", timeout, len(keys), *keys, "LEFT", "COUNT",
                                       limit))
                    entries = popped[1] if popped else []
                except redis.exceptions.ResponseError as exc:
                    self._native_unsupported(exc)
            if not self._native_pop:
                popped = await self._pop_call_async(state, shard, ("BLPOP", *keys, timeout))
                entries = [popped[1]] if popped else []
            uncount = self._uncount_plan(entries)
            if uncount is not None:
                self._owe_uncount(state, shard, uncount)
        return entries

    async def _wait_any_shard_async(self, state: LoopState, by_shard: dict[int, list[str]],
                                    remaining: float, count: int) -> None:
        """Block on every shard at once; entries go to the stash (see the sync version)."""
        tasks = []
        for shard, queues in by_shard.items():
            key = (shard, tuple(sorted(queues)))
            task = state.inflight.get(key)
            if task is None:
                self._count_pending_pop(queues, 1)
                task = asyncio.ensure_future(self._pop_async_into_stash(state, key, shard,
                                                                        queues, count))
                # A pop whose caller has gone may fail unobserved: mark its error as seen.
                task.add_done_callback(lambda done: done.cancelled() or done.exception())
                state.inflight[key] = task
            tasks.append(task)
        # Woken by an entry reaching the stash (set directly by the pop's own step: a reply
        # is handed over one pass of the loop after Redis answers), or by a pop ending without
        # one (timed out, failed). Not ``asyncio.wait``: its callbacks would cost two more
        # passes of the loop on every wake-up of a server's reply loop.
        waiter = self._watch_stash_async([q for queues in by_shard.values() for q in queues])
        wake = waiter.future

        def ended(_task: asyncio.Task) -> None:
            set_woken(wake)

        for task in tasks:
            task.add_done_callback(ended)
        try:
            async with asyncio.timeout(remaining):
                await wake
        except TimeoutError:
            pass
        finally:
            self._unwatch_stash(waiter)
            wake.cancel()
            for task in tasks:
                task.remove_done_callback(ended)
        shards = list(by_shard)
        failed = [task for task in tasks if task.done()
                  and not task.cancelled() and task.exception() is not None]
        for task in failed:
            self._mark_down(shards[tasks.index(task)], task.exception())
        self._raise_if_all_failed([task.exception() for task in failed], len(tasks))

    async def _pop_async_into_stash(self, state: LoopState, key: tuple, shard: int,
                                    queues: list[str], count: int) -> None:
        try:
            entries = await self._block_pop_async(state, shard, queues, count,
                                                  self.blocking_timeout)
        finally:
            # This pop takes nothing more: a new receive may start its own.
            state.inflight.pop(key, None)
            self._count_pending_pop(queues, -1)
        for entry in entries:
            self._stash_entry(entry)

    async def _evalsha_args_async(self, state: LoopState, shard: int, name: str,
                                  args: list) -> Any:
        """``_evalsha_args`` from an event loop, on that loop's connections."""
        script = state.scripts[name]
        try:
            return await state.conns.call(shard, "EVALSHA", script.sha, *args)
        except redis.exceptions.NoScriptError:
            await state.conns.call(shard, "SCRIPT", "LOAD", script.script)
            return await state.conns.call(shard, "EVALSHA", script.sha, *args)

    # -- count updates owed by blocking pops -----------------------------------------------

    async def _pop_call_async(self, state: LoopState, shard: int, command: tuple) -> Any:
        """A pop on ``shard``, preceded in the same write by the count updates owed there."""
        owed = state.uncounts.pop(shard, None)
        if not owed:
            return await state.conns.call(shard, *command, blocking=command[0] in _BLOCKING)
        sha = state.scripts["uncount"].sha
        commands = [("EVALSHA", sha, len(keys), *keys, *channels) for keys, channels in owed]
        try:
            *updates, reply = await state.conns.pipeline(shard, [*commands, command],
                                                         blocking=command[0] in _BLOCKING)
        except Exception as exc:
            # Sent or not, unknown: the counts are put right when the queue is next seen empty.
            self._uncount_failed(shard, exc)
            raise
        for (keys, channels), update in zip(owed, updates, strict=True):
            try:
                if isinstance(update, redis.exceptions.NoScriptError):
                    await self._evalsha_args_async(state, shard, "uncount",
                                                   [len(keys), *keys, *channels])
                elif isinstance(update, redis.exceptions.ResponseError):
                    raise update
            except redis.exceptions.RedisError as exc:  # never at the cost of what was popped
                self._uncount_failed(shard, exc)
        if isinstance(reply, redis.exceptions.ResponseError):
            raise reply
        return reply

    def _owe_uncount(self, state: LoopState, shard: int, uncount: tuple[list, list]) -> None:
        owed = state.uncounts.setdefault(shard, [])
        owed.append(uncount)
        if shard not in state.uncount_timers:
            state.uncount_timers.add(shard)
            asyncio.get_running_loop().call_later(UNCOUNT_DELAY, self._uncount_due, state,
                                                  shard)

    def _uncount_due(self, state: LoopState, shard: int) -> None:
        """Timer: send the count updates no pop has taken along since (an idle reader)."""
        state.uncount_timers.discard(shard)
        if not state.uncounts.get(shard):
            return
        task = asyncio.ensure_future(self._send_uncounts(state, shard))
        state.uncounting.add(task)
        task.add_done_callback(state.uncounting.discard)

    async def _send_uncounts(self, state: LoopState, shard: int) -> None:
        for keys, channels in state.uncounts.pop(shard, None) or []:
            try:
                with self._guard(shard):
                    await self._evalsha_args_async(state, shard, "uncount",
                                                   [len(keys), *keys, *channels])
            except redis.exceptions.RedisError as exc:
                self._uncount_failed(shard, exc)

    # -- channels and groups ---------------------------------------------------------------

    async def new_channel_async(self, pattern: str) -> str:
        validate_new_channel_pattern(pattern)
        state = self._loop_state()
        while True:
            name = pattern + random_suffix()
            shard = self._shard_of(name)
            client = state.clients[shard]
            with self._guard(shard):
                if is_process_channel(name):
                    exists = await client.hexists(self._counts_key(name), name)
                else:
                    exists = await client.exists(self._queue_key(name))
            if not exists:
                return name

    async def group_add_async(self, group: str, channel: str) -> None:
        validate_group_name(group)
        validate_channel_name(channel)
        shard = self._shard_of(group)
        state = self._loop_state()
        with self._guard(shard):
            pipe = state.clients[shard].pipeline(transaction=False)
            self._group_add_commands(pipe, group, channel)
            await pipe.execute()

    async def group_discard_async(self, group: str, channel: str) -> None:
        validate_group_name(group)
        validate_channel_name(channel)
        shard = self._shard_of(group)
        state = self._loop_state()
        with self._guard(shard):
            pipe = state.clients[shard].pipeline(transaction=False)
            self._group_discard_commands(pipe, group, channel)
            await pipe.execute()

    async def group_channels_async(self, group: str) -> list[str]:
        validate_group_name(group)
        shard = self._shard_of(group)
        state = self._loop_state()
        with self._guard(shard):
            members = await state.scripts["group_members"](*self._members_call(group),
                                                           client=state.clients[shard])
        return [member.decode("ascii") for member in members]
