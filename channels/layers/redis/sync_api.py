"""The synchronous API of the Redis layer: a worker's and a management command's.

Commands on the hot path (send, receive, group send) run on a connection each thread holds
(``connections.ThreadConnections``); the others on redis-py's clients, one per shard. A receive
over several shards waits on all of them at once, each blocking pop in a thread of its own.
"""

from __future__ import annotations

import concurrent.futures
import random
import threading
import time
from collections.abc import Sequence
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
from channels.layers.redis.errors import RedisLayerUnavailable
from channels.layers.redis.keys import glob_escape
from channels.layers.redis.plans import check_limit

#: Blocking pops the sync API runs at once for receives spanning shards (one per shard and
#: distinct channel list being waited on); more wait for a free thread.
MAX_WAITING_POPS = 256


class SyncAPI:
    """The layer's synchronous methods (a part of :class:`RedisChannelLayer`).

    Relies on the layer's plans, stash, shard failures, ``_clients`` and ``_scripts`` (redis-py
    clients and registered scripts per shard) and ``_direct`` (this thread's connections).
    Holds the blocking pops running in its threads: ``_inflight`` and ``_executor``.
    """

    blocking_timeout: float
    _lock: threading.Lock
    _clients: list[redis.Redis]
    _scripts: dict[str, Any]
    _inflight: dict[tuple, concurrent.futures.Future]
    _executor: concurrent.futures.ThreadPoolExecutor | None

    def _init_sync_api(self) -> None:
        # (shard, queues) -> the blocking pop waiting on them for receives spanning shards.
        self._inflight = {}
        self._executor = None

    # -- sends -----------------------------------------------------------------------------

    def send(self, channel: str, message: dict) -> None:
        shard, args = self._send_plan(channel, message)
        with self._guard(shard):
            queued = self._evalsha_args(shard, "send", args)
        if not queued:
            raise ChannelFull(channel)

    def send_many(self, messages: Sequence[tuple[str, dict]]) -> list[bool]:
        """Send several messages with one round trip per shard; True where queued, False
        where that channel was full (never raises ``ChannelFull``).

        A shard that is down raises ``RedisLayerUnavailable`` after the other shards' pushes
        were made (they cannot be taken back), like separate sends would have.
        """
        return self._push_plans(self._send_many_plans(messages), len(messages))

    def _push_plans(self, plans: dict[int, tuple[list[int], list, list]],
                    count: int) -> list[bool]:
        flags = [False] * count
        errors: list[BaseException] = []
        for shard, (indexes, keys, args) in plans.items():
            try:
                with self._guard(shard):
                    queued = self._evalsha_args(shard, "push", [len(keys), *keys, *args])
            except RedisLayerUnavailable as exc:
                errors.append(exc)
                continue
            for index, ok in zip(indexes, queued, strict=True):
                flags[index] = bool(ok)
        if errors:
            raise errors[0]
        return flags

    def send_group(self, group: str, message: dict) -> None:
        """One script call on the group's shard, plus one per other shard holding members."""
        payload, deadline, now_ms = self._group_send_plan(group, message)
        shard = self._shard_of(group)
        with self._guard(shard):
            keys, args = self._group_send_call(group, shard, payload, deadline, now_ms)
            reply = self._evalsha_args(shard, "group_send", [len(keys), *keys, *args])
        for other, (keys, args) in self._remote_plans(reply, payload, deadline, now_ms).items():
            try:
                with self._guard(other):
                    self._evalsha_args(other, "push", [len(keys), *keys, *args])
            except RedisLayerUnavailable as exc:
                self._group_shard_missed(group, other, exc)

    # -- receives --------------------------------------------------------------------------

    def receive(self, channels: list[str], block: bool = False) -> tuple:
        batch = self.receive_batch(channels, 1, block=block)
        return batch[0] if batch else (None, None)

    def receive_batch(self, channels: list[str], limit: int,
                      block: bool = False) -> list[tuple[str, dict]]:
        queues, by_shard = self._receive_plan(channels)
        check_limit(limit)
        deadline = time.monotonic() + self.blocking_timeout
        while True:
            received = self._take_stash(queues, limit)
            if received:
                return received
            usable = self._usable(by_shard)
            received = self._pop_sync(usable, limit)
            remaining = deadline - time.monotonic()
            if received or not block or remaining <= 0:
                return received
            if len(usable) == 1 and not self._pops_pending(queues):
                [(shard, shard_queues)] = usable.items()
                received = self._decode_all(
                    self._block_pop_sync(shard, shard_queues, limit, remaining))
                if received:
                    return received
            else:
                self._wait_any_shard_sync(usable, remaining)

    def send_then_receive_batch(
        self, messages: Sequence[tuple[str, dict]], channels: list[str], limit: int,
        block: bool = False,
    ) -> tuple[list[bool], list[tuple[str, dict]]]:
        """The sends and a non-blocking pop in one write when they share a shard (a worker's
        replies and its next request: one round trip per request instead of two, whenever
        requests are queued); anything else, or a blocking wait when the pop found nothing, as
        separate calls.
        """
        if not messages:
            return [], self.receive_batch(channels, limit, block=block)
        queues, by_shard = self._receive_plan(channels)
        check_limit(limit)
        plans = self._send_many_plans(messages)  # bad input raises here, having written nothing
        usable = self._usable(by_shard)
        if (len(plans) != 1 or list(plans) != list(usable) or not self._native_pop_for(queues)
                or self._stash or self._pops_pending(queues)):
            flags = self._push_plans(plans, len(messages))
            return flags, self.receive_batch(channels, limit, block=block)
        [(shard, (indexes, keys, args))] = plans.items()
        pop_keys = self._shuffled_keys(queues)
        # Blocking (BLMPOP answers at once when something is queued) only once this
        # connection has run a script: else a push refused for a missing script (a restarted
        # or new server) could only be retried after the blocking pop had timed out.
        blocking = block and self._direct.scripts_known(shard)
        pop = (("BLMPOP", self.blocking_timeout) if blocking else ("LMPOP",)) + (
            len(pop_keys), *pop_keys, "LEFT", "COUNT", limit)
        with self._guard(shard):
            pushed, popped = self._direct.pipeline(shard, [
                ("EVALSHA", self._scripts["push"].sha, len(keys), *keys, *args), pop])
        try:
            with self._guard(shard):
                if isinstance(pushed, redis.exceptions.NoScriptError):  # push again
                    pushed = self._evalsha_args(shard, "push", [len(keys), *keys, *args])
                elif isinstance(pushed, redis.exceptions.ResponseError):
                    raise pushed
                else:
                    self._direct.mark_scripts_known(shard)
        except BaseException:
            # The pop ran whatever became of the push: what it took must not be lost with
            # the error, so it waits in the stash for the next receive.
            if popped and not isinstance(popped, redis.exceptions.ResponseError):
                for entry in popped[1]:
                    self._stash_entry(entry)
            raise
        flags = [False] * len(messages)
        for index, ok in zip(indexes, pushed, strict=True):
            flags[index] = bool(ok)
        if isinstance(popped, redis.exceptions.ResponseError):
            self._native_unsupported(popped)  # Redis before 7: receive through Lua instead
            return flags, self.receive_batch(channels, limit, block=block)
        if popped is not None:
            received = self._decode_all(popped[1])
            if received:
                return flags, received
            # All expired: there may be live entries behind them.
            return flags, self.receive_batch(channels, limit, block=block)
        if blocking or not block:  # nothing queued (for blocking_timeout, if it blocked)
            return flags, []
        # Nothing queued: wait right away, without receive_batch's non-blocking pop first
        # (one shard and no other pop pending on these queues: checked above).
        return flags, self._decode_all(
            self._block_pop_sync(shard, usable[shard], limit, self.blocking_timeout))

    def _pop_sync(self, by_shard: dict[int, list[str]], limit: int) -> list[tuple[str, dict]]:
        if len(by_shard) == 1:  # the usual case, without the bookkeeping of several shards
            [(shard, queues)] = by_shard.items()
            try:
                return self._pop_shard_sync(shard, queues, limit)
            except RedisLayerUnavailable as exc:
                self._mark_down(shard, exc)
                raise
        received: list[tuple[str, dict]] = []
        errors: list[BaseException] = []
        shards = list(by_shard)
        random.shuffle(shards)
        for shard in shards:
            try:
                received += self._pop_shard_sync(shard, by_shard[shard], limit - len(received))
            except RedisLayerUnavailable as exc:
                errors.append(exc)
                self._mark_down(shard, exc)
                continue
            if len(received) >= limit:
                break
        self._raise_if_all_failed(errors, len(shards))
        return received

    def _pop_shard_sync(self, shard: int, queues: list[str],
                        limit: int) -> list[tuple[str, dict]]:
        call = self._direct.call
        with self._guard(shard):
            if self._native_pop_for(queues):
                keys = self._shuffled_keys(queues)
                try:
                    while True:
                        popped = call(shard, "LMPOP", len(keys), *keys, "LEFT", "COUNT", limit)
                        if popped is None:
                            return []
                        received = [item for item in map(self._decode_entry, popped[1])
                                    if item is not None]
                        if received:  # else all were expired: look behind them
                            return received
                except redis.exceptions.ResponseError as exc:
                    self._native_unsupported(exc)
            keys, args = self._pop_plan(queues, limit)
            return self._decode_all(self._evalsha_args(shard, "pop", [len(keys), *keys, *args]))

    def _block_pop_sync(self, shard: int, queues: list[str], limit: int,
                        timeout: float) -> list[bytes]:
        """Wait on a shard's queues for up to ``limit`` entries (live or not)."""
        call = self._direct.call
        keys = self._shuffled_keys(queues)
        timeout = max(timeout, 0.01)
        with self._guard(shard):
            entries: list[bytes] = []
            if self._native_pop:
                try:
                    popped = call(shard, "BLMPOP", timeout, len(keys), *keys, "LEFT",
                                  "COUNT", limit)
                    entries = popped[1] if popped else []
                except redis.exceptions.ResponseError as exc:
                    self._native_unsupported(exc)
            if not self._native_pop:
                popped = call(shard, "BLPOP", *keys, timeout)
                entries = [popped[1]] if popped else []
            uncount = self._uncount_plan(entries)
            if uncount is not None:
                keys, channels = uncount
                try:
                    self._evalsha_args(shard, "uncount", [len(keys), *keys, *channels])
                except redis.exceptions.RedisError as exc:
                    self._uncount_failed(shard, exc)
        return entries

    def _wait_any_shard_sync(self, by_shard: dict[int, list[str]], remaining: float) -> None:
        """Block on every shard at once (channels_redis#50: no shard may stall another).

        Each shard gets one blocking pop in a worker thread; the first entry wakes the caller,
        and entries the other pops bring in later are stashed for the next receive.
        """
        futures = []
        with self._lock:
            if self._executor is None:
                # Each waiting pop holds a thread for up to blocking_timeout: a pop queued
                # behind others would wake its reader that late, so allow plenty (threads
                # are only created as needed).
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=MAX_WAITING_POPS, thread_name_prefix="channels-redis-pop")
            for shard, queues in by_shard.items():
                key = (shard, tuple(sorted(queues)))
                future = self._inflight.get(key)
                if future is None or future.cancelled():  # cancelled: by an earlier close()
                    future = self._executor.submit(self._pop_into_stash, key, shard, queues)
                    self._inflight[key] = future
                futures.append(future)
        waiter = self._watch_stash([q for queues in by_shard.values() for q in queues])
        try:
            done, _ = concurrent.futures.wait([*futures, waiter], timeout=remaining,
                                              return_when=concurrent.futures.FIRST_COMPLETED)
        finally:
            self._unwatch_stash(waiter)
        shards = list(by_shard)
        failed = [future for future in done if future is not waiter
                  and not future.cancelled() and future.exception() is not None]
        for future in failed:
            self._mark_down(shards[futures.index(future)], future.exception())
        self._raise_if_all_failed([future.exception() for future in failed], len(futures))

    def _pop_into_stash(self, key: tuple, shard: int, queues: list[str]) -> None:
        # Counted once running (a pop close() cancels before it starts never runs its finally).
        self._count_pending_pop(queues, 1)
        try:
            # One entry at a time: whatever this pop takes waits in this process, so leave the
            # rest in Redis for other readers.
            for entry in self._block_pop_sync(shard, queues, 1, self.blocking_timeout):
                self._stash_entry(entry)
        finally:
            with self._lock:
                self._inflight.pop(key, None)
            self._count_pending_pop(queues, -1)

    def _evalsha_args(self, shard: int, name: str, args: list) -> Any:
        """Run a script on this thread's connection to ``shard``; ``args`` is ``numkeys,
        *keys, *argv``. Only a server that lacks the script (restarted, flushed) pays for
        loading it."""
        script = self._scripts[name]
        try:
            reply = self._direct.call(shard, "EVALSHA", script.sha, *args)
        except redis.exceptions.NoScriptError:
            self._direct.call(shard, "SCRIPT", "LOAD", script.script)
            reply = self._direct.call(shard, "EVALSHA", script.sha, *args)
        self._direct.mark_scripts_known(shard)
        return reply

    # -- channels and groups ---------------------------------------------------------------

    def new_channel(self, pattern: str) -> str:
        validate_new_channel_pattern(pattern)
        while True:
            name = pattern + random_suffix()
            shard = self._shard_of(name)
            with self._guard(shard):
                if not self._channel_exists_sync(shard, name):
                    return name

    def _channel_exists_sync(self, shard: int, name: str) -> bool:
        client = self._clients[shard]
        if is_process_channel(name):
            return bool(client.hexists(self._counts_key(name), name))
        return bool(client.exists(self._queue_key(name)))

    def group_add(self, group: str, channel: str) -> None:
        validate_group_name(group)
        validate_channel_name(channel)
        shard = self._shard_of(group)
        with self._guard(shard):
            pipe = self._clients[shard].pipeline(transaction=False)
            self._group_add_commands(pipe, group, channel)
            pipe.execute()

    def group_discard(self, group: str, channel: str) -> None:
        validate_group_name(group)
        validate_channel_name(channel)
        shard = self._shard_of(group)
        with self._guard(shard):
            pipe = self._clients[shard].pipeline(transaction=False)
            self._group_discard_commands(pipe, group, channel)
            pipe.execute()

    def group_channels(self, group: str) -> list[str]:
        validate_group_name(group)
        shard = self._shard_of(group)
        with self._guard(shard):
            members = self._scripts["group_members"](*self._members_call(group),
                                                     client=self._clients[shard])
        return [member.decode("ascii") for member in members]

    # -- housekeeping ----------------------------------------------------------------------

    def flush(self) -> None:
        """Delete this prefix's keys on every shard (SCAN, never KEYS or FLUSHDB)."""
        pattern = glob_escape(self.prefix) + "*"
        for shard, client in enumerate(self._clients):
            with self._guard(shard):
                batch = []
                for key in client.scan_iter(match=pattern, count=1000):
                    batch.append(key)
                    if len(batch) >= 1000:
                        client.unlink(*batch)
                        batch = []
                if batch:
                    client.unlink(*batch)
        with self._lock:
            self._stash.clear()

    def close(self) -> None:
        """Hand stashed entries back to Redis and release the synchronous connections."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            # Let in-flight blocking pops end (within blocking_timeout) so that whatever they
            # take lands in the stash and goes back to Redis below, instead of being lost.
            executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            self._inflight.clear()
        for shard, channel, commands in self._stash_return_plan():
            try:
                pipe = self._clients[shard].pipeline(transaction=False)
                for command in commands:
                    pipe.execute_command(*command)
                pipe.execute()
            except redis.exceptions.RedisError:
                logger.warning("could not return a received message on %s to Redis", channel)
        self._direct.close()
        for client in self._clients:
            client.close()
