"""Channel layer benchmark: one command, one JSON line per measurement.

    .venv/bin/python -m benchmarks.layer [--redis URL] [--messages N] [--repeat N]
                                         [--batch N] [--group-size N] [--group-rounds N]

Measures send+receive throughput of each backend (single and batched receive), a group send to
``--group-size`` members, and, in the same run against the same Redis, a baseline of plain
redis-py ``RPUSH``/``BLPOP`` of the same msgpack payload. Round trips are counted on the client
side (a connection class that counts the commands it writes), not estimated.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import msgpack
import redis
import redis.asyncio

from benchmarks.harness import emit, median_ratio, redis_url
from channels.layers.inmemory import InMemoryChannelLayer
from channels.layers.redis import RedisChannelLayer

MESSAGE = {
    "reply_channel": "websocket.send.bench!AbCdEfGhIjKl",
    "path": "/chat/lobby/",
    "order": 7,
    "text": "x" * 100,
}


class CountingConnection(redis.Connection):
    """Counts round trips: every pipeline or command is one write of packed commands."""

    writes = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.writes += 1
        super().send_packed_command(command, check_health)


class CountingAsyncConnection(redis.asyncio.Connection):
    """The asyncio twin of :class:`CountingConnection`."""

    writes = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingAsyncConnection.writes += 1
        await super().send_packed_command(command, check_health)


def timed(action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def baseline(url: str, count: int) -> tuple[float, float]:
    """Plain redis-py: RPUSH each msgpack payload, then BLPOP each one back.

    Returns (send+receive msgs/s, receive-only msgs/s).
    """
    client = redis.Redis.from_url(url, socket_timeout=10)
    key = f"bench-baseline-{uuid.uuid4().hex}"
    payload = msgpack.packb(MESSAGE, use_bin_type=True)
    try:
        sending = timed(lambda: [client.rpush(key, payload) for _ in range(count)])
        receiving = timed(lambda: [msgpack.unpackb(client.blpop([key], timeout=1)[1], raw=False)
                                   for _ in range(count)])
        return count / (sending + receiving), count / receiving
    finally:
        client.delete(key)
        client.close()


def send_receive(layer: Any, count: int, batch: int) -> tuple[float, float]:
    """Send ``count`` messages, then receive them singly or in batches.

    Returns (send+receive msgs/s, receive-only msgs/s).
    """

    def receive_all() -> None:
        received = 0
        while received < count:
            if batch == 1:
                channel, _ = layer.receive(["bench.channel"], block=True)
                received += channel is not None
            else:
                received += len(layer.receive_batch(["bench.channel"], batch, block=True))

    sending = timed(lambda: [layer.send("bench.channel", MESSAGE) for _ in range(count)])
    receiving = timed(receive_all)
    return count / (sending + receiving), count / receiving


def median_of_runs(repeat: int,
                   measure: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    """Median of several runs: the machine may be shared, and a median shrugs off outliers."""
    runs = [measure() for _ in range(repeat)]
    return (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))


def group_send(layer: Any, members: int, rounds: int, servers: int = 1) -> dict[str, Any]:
    """Send to a group of ``members`` sockets spread over ``servers`` process prefixes."""
    prefixes = [f"bench.server{index}!" for index in range(servers)]
    sockets = [layer.new_channel(prefixes[index % servers]) for index in range(members)]
    for socket in sockets:
        layer.group_add("bench-group", socket)
    layer.send_group("bench-group", MESSAGE)  # warm up: loads the script on a fresh server
    layer.receive_batch(prefixes, 2 * members)
    writes_before = CountingConnection.writes
    seconds = timed(lambda: [layer.send_group("bench-group", MESSAGE) for _ in range(rounds)])
    round_trips = (CountingConnection.writes - writes_before) / rounds
    delivered = 0
    while True:
        got = layer.receive_batch(prefixes, 1000)
        if not got:
            break
        delivered += len(got)
    return {"seconds_per_group_send": seconds / rounds, "deliveries_per_s":
            members * rounds / seconds, "delivered": delivered, "expected": members * rounds,
            "round_trips_per_group_send": round_trips}


def send_many_vs_send(layer: Any, count: int, per_call: int = 8) -> dict[str, Any]:
    """Replies to ``per_call`` sockets at once: one ``send_many`` against that many sends."""
    sockets = [layer.new_channel("bench.many!") for _ in range(per_call)]
    batches = count // per_call
    pairs = [(socket, MESSAGE) for socket in sockets]
    single = timed(lambda: [[layer.send(c, m) for c, m in pairs] for _ in range(batches)])
    layer.receive_batch(["bench.many!"], count + per_call)
    many = timed(lambda: [layer.send_many(pairs) for _ in range(batches)])
    layer.receive_batch(["bench.many!"], count + per_call)
    return {"send_msgs_per_s": round(batches * per_call / single),
            "send_many_msgs_per_s": round(batches * per_call / many),
            "speed_up": round(single / many, 2)}


def async_trickle(url: str, replies: int) -> dict[str, Any]:
    """A server's reply loop: replies arrive one at a time (each sent only once the previous
    one was received) on a process channel read by ``receive_batch_async``; counts the
    commands the receiving side writes per reply and the time from send to delivery."""
    reader = RedisChannelLayer(
        hosts=[url], prefix=f"bench-{uuid.uuid4().hex[:8]}:", blocking_timeout=1,
        connection_kwargs={"connection_class": CountingAsyncConnection})
    sender = RedisChannelLayer(hosts=[url], prefix=reader.prefix)
    socket = sender.new_channel("bench.trickle!")

    async def scenario() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        await reader.receive_batch_async(["bench.trickle!"], 100)  # warm up (idle)
        writes = CountingAsyncConnection.writes
        latencies = []
        for _ in range(replies):
            receiving = asyncio.ensure_future(
                reader.receive_batch_async(["bench.trickle!"], 100))
            await asyncio.sleep(0.001)  # the reader is waiting, as a server's is
            started = time.perf_counter()
            await loop.run_in_executor(None, sender.send, socket, MESSAGE)
            assert len(await receiving) == 1
            latencies.append(time.perf_counter() - started)
        await reader.close_async()
        return (CountingAsyncConnection.writes - writes) / replies, statistics.median(latencies)

    try:
        per_reply, latency = asyncio.run(scenario())
    finally:
        # The reader's sync clients carry the asyncio connection class: never used.
        sender.flush()
        sender.close()
    return {"replies": replies, "receiver_commands_per_reply": round(per_reply, 2),
            "median_send_to_delivery_ms": round(latency * 1000, 3)}


def redis_layer(url: str, counting: bool = False, **options: Any) -> RedisChannelLayer:
    """A layer on its own prefix; ``counting`` swaps in the round-trip counting connection
    (throughput runs use redis-py's own, like the baseline)."""
    kwargs = {"connection_class": CountingConnection} if counting else {}
    return RedisChannelLayer(hosts=[url], prefix=f"bench-{uuid.uuid4().hex[:8]}:",
                             capacity=100_000, connection_kwargs=kwargs, **options)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.layer",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default=os.environ.get("CHANNELS_TEST_REDIS"),
                        help="Redis URL (default: a private redis-server started for the run, "
                             "so other clients of a shared Redis do not skew the numbers)")
    parser.add_argument("--messages", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--group-size", type=int, default=1000)
    parser.add_argument("--group-rounds", type=int, default=20)
    args = parser.parse_args(argv)
    with redis_url(args.redis) as url:
        args.redis = url
        return run(args)


def run(args: argparse.Namespace) -> int:
    count = args.messages
    emit(test="setup", redis=args.redis, messages=count, repeat=args.repeat,
         load_average=os.getloadavg()[0])

    repeat = args.repeat
    memory = InMemoryChannelLayer(capacity=count + 1)
    for batch in (1, args.batch):
        both, receive_only = median_of_runs(repeat, lambda b=batch: send_receive(memory, count, b))
        emit(backend="inmemory", test="send+receive" if batch == 1 else
             f"send+receive_batch({batch})", messages=count, msgs_per_s=round(both),
             receive_only_msgs_per_s=round(receive_only))

    configs = {
        "redis": {},
        "redis-encrypted": {"symmetric_encryption_keys": ["bench-secret"]},
    }
    layers = {name: redis_layer(args.redis, **options) for name, options in configs.items()}
    try:
        # Baseline and layers are measured back to back in every round, and ratios are taken
        # within a round, then the median over rounds (median_ratio).
        rounds: list[dict[tuple[str, int], tuple[float, float]]] = []
        for _ in range(repeat):
            measured = {("baseline", 1): baseline(args.redis, count)}
            for name, layer in layers.items():
                for batch in (1, args.batch):
                    measured[(name, batch)] = send_receive(layer, count, batch)
            rounds.append(measured)

        def median_of(value: Callable[[dict], float]) -> float:
            return statistics.median(value(measured) for measured in rounds)

        base = ("baseline", 1)
        emit(backend="redis-py RPUSH/BLPOP", test="send+receive (baseline)", messages=count,
             rounds=repeat, msgs_per_s=round(median_of(lambda m: m[base][0])),
             receive_only_msgs_per_s=round(median_of(lambda m: m[base][1])))
        for name in layers:
            single, batched = (name, 1), (name, args.batch)
            emit(backend=name, test="send+receive", messages=count,
                 msgs_per_s=round(median_of(lambda m, k=single: m[k][0])),
                 ratio_vs_baseline=round(median_ratio(
                     rounds, lambda m, k=single: m[k][0], lambda m: m[base][0]), 2),
                 receive_only_msgs_per_s=round(median_of(lambda m, k=single: m[k][1])),
                 receive_ratio_vs_baseline=round(median_ratio(
                     rounds, lambda m, k=single: m[k][1], lambda m: m[base][1]), 2))
            emit(backend=name, test=f"send+receive_batch({args.batch})", messages=count,
                 msgs_per_s=round(median_of(lambda m, k=batched: m[k][0])),
                 ratio_vs_baseline=round(median_ratio(
                     rounds, lambda m, k=batched: m[k][0], lambda m: m[base][0]), 2),
                 ratio_vs_unbatched=round(median_ratio(
                     rounds, lambda m, k=batched: m[k][0], lambda m, u=single: m[u][0]), 2),
                 receive_only_msgs_per_s=round(median_of(lambda m, k=batched: m[k][1])),
                 receive_ratio_vs_unbatched=round(median_ratio(
                     rounds, lambda m, k=batched: m[k][1], lambda m, u=single: m[u][1]), 2))
    finally:
        for layer in layers.values():
            layer.flush()
            layer.close()

    layer = redis_layer(args.redis, counting=True)
    try:
        layer.send("bench.rtt", MESSAGE)  # warm up: connection set-up and script loading
        layer.receive(["bench.rtt"])
        writes = CountingConnection.writes
        layer.send("bench.rtt", MESSAGE)
        after_send = CountingConnection.writes
        layer.receive(["bench.rtt"])
        emit(backend="redis", test="round trips", send=after_send - writes,
             receive=CountingConnection.writes - after_send)
        if hasattr(layer, "send_many"):
            emit(backend="redis", test="8 replies per call: send_many vs send",
                 **send_many_vs_send(layer, count))
        emit(backend="redis", test="async reply loop, replies trickling in",
             **async_trickle(args.redis, 200))
        emit(backend="redis", test=f"group send to {args.group_size} sockets (1 shard)",
             **group_send(layer, args.group_size, args.group_rounds))
    finally:
        layer.flush()
        layer.close()

    second_db = args.redis.rsplit("/", 1)[0] + "/1"
    layer = RedisChannelLayer(hosts=[args.redis, second_db], capacity=100_000,
                              prefix=f"bench-{uuid.uuid4().hex[:8]}:",
                              connection_kwargs={"connection_class": CountingConnection})
    try:
        servers = 10
        shards_used = len({layer._shard_of(f"bench.server{index}!") for index in range(servers)})
        emit(backend="redis-2-shards",
             test=f"group send to {args.group_size} sockets on {servers} servers",
             shards_holding_members=shards_used,
             **group_send(layer, args.group_size, args.group_rounds, servers))
    finally:
        layer.flush()
        layer.close()

    memory = InMemoryChannelLayer(capacity=100_000)
    emit(backend="inmemory", test=f"group send to {args.group_size} sockets",
         **group_send(memory, args.group_size, args.group_rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
