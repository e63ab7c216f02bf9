"""Each Lua script of the Redis layer, loaded from its file and run on its own with EVAL.

The layer's own tests reach the scripts through its API; these call each one directly on a
real Redis, on keys under this test's prefix, and check what it did to them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any

import pytest
import redis

from channels.layers.redis.codec import frame_entry
from channels.layers.redis.scripts import SCRIPT_NAMES, SCRIPTS, load_script

TTL = 61
STATS_TTL = 3600
PROCESS_CAPACITY = 1000


@pytest.fixture
def run(redis_client: redis.Redis, unique_prefix: str) -> Iterator[Callable[..., Any]]:
    """``run(name, keys, args)``: EVAL one script; every key under the prefix deleted after."""

    def evaluate(name: str, keys: list[str], args: list[Any]) -> Any:
        return redis_client.eval(SCRIPTS[name], len(keys), *keys, *args)

    yield evaluate
    for key in redis_client.scan_iter(match=unique_prefix + "*"):
        redis_client.delete(key)


def now_ms() -> int:
    return int(time.time() * 1000)


def entry(channel: str, payload: bytes = b"payload", lifetime_ms: int = 60_000) -> bytes:
    return frame_entry(b"%014d" % (now_ms() + lifetime_ms), channel, payload)


def test_every_script_loads_from_its_file_with_its_helpers_included(redis_client):
    lua = resources.files("channels.layers.redis") / "lua"
    for name in SCRIPT_NAMES:
        source = SCRIPTS[name]
        assert (lua / f"{name}.lua").is_file()
        assert "-- include:" not in source
        # Redis compiles it: a syntax error (or a helper left out) would fail here.
        assert redis_client.script_load(source) == hashlib.sha1(source.encode()).hexdigest()
    assert "local function push(" in SCRIPTS["send"]
    assert "local function prune(" in SCRIPTS["group_send"]


def test_an_include_cycle_is_refused(tmp_path, monkeypatch):
    (tmp_path / "lua").mkdir()
    (tmp_path / "lua" / "a.lua").write_text("-- include: b.lua\n")
    (tmp_path / "lua" / "b.lua").write_text("-- include: a.lua\n")
    monkeypatch.setattr(resources, "files", lambda package: tmp_path)
    with pytest.raises(ValueError, match="a.lua -> b.lua -> a.lua"):
        load_script("a.lua")


def test_send_queues_counts_and_refuses_when_full(run, redis_client, unique_prefix):
    queue, stats, shard_stats = (unique_prefix + "s.q", unique_prefix + "#s:s.q",
                                 unique_prefix + "#s")
    keys = [queue, stats, shard_stats]
    first = entry("s.q", b"one")

    def send(item: bytes) -> int:
        return run("send", keys, [item, 1, TTL, STATS_TTL, PROCESS_CAPACITY, now_ms(), "s.q"])

    assert send(first) == 1
    assert send(entry("s.q", b"two")) == 0  # capacity 1
    assert redis_client.lrange(queue, 0, -1) == [first]
    assert 0 < redis_client.ttl(queue) <= TTL
    assert redis_client.hgetall(stats) == {b"messages_count": b"1",
                                           b"channel_full_count": b"1"}
    assert 0 < redis_client.ttl(stats) <= STATS_TTL
    assert redis_client.hgetall(shard_stats) == {b"messages_count": b"1",
                                                 b"channel_full_count": b"1"}


def test_send_to_a_process_channel_counts_it_per_socket(run, redis_client, unique_prefix):
    queue, counts = unique_prefix + "s.srv!", unique_prefix + "#c:s.srv!"
    keys = [queue, unique_prefix + "#s:s.srv!", unique_prefix + "#s", counts]
    for expected in (1, 1, 0):  # capacity 2 for the socket
        assert run("send", keys, [entry("s.srv!a"), 2, TTL, STATS_TTL, PROCESS_CAPACITY,
                                  now_ms(), "s.srv!a"]) == expected
    assert redis_client.llen(queue) == 2
    assert redis_client.hgetall(counts) == {b"s.srv!a": b"2"}
    assert 0 < redis_client.ttl(counts) <= TTL


def test_push_queues_each_message_and_flags_the_full_ones(run, redis_client, unique_prefix):
    shard_stats = unique_prefix + "#s"
    keys = [shard_stats,
            unique_prefix + "p.q", "", unique_prefix + "#s:p.q",
            unique_prefix + "p.q", "", unique_prefix + "#s:p.q",
            unique_prefix + "p.srv!", unique_prefix + "#c:p.srv!", unique_prefix + "#s:p.srv!"]
    args = [now_ms(), TTL, PROCESS_CAPACITY, STATS_TTL,
            "p.q", 1, entry("p.q"), "p.q", 1, entry("p.q"), "p.srv!a", 5, entry("p.srv!a")]
    assert run("push", keys, args) == [1, 0, 1]
    assert redis_client.llen(unique_prefix + "p.q") == 1
    assert redis_client.hget(unique_prefix + "#c:p.srv!", "p.srv!a") == b"1"
    assert redis_client.hgetall(shard_stats) == {b"messages_count": b"2",
                                                 b"channel_full_count": b"1"}


def test_group_members_returns_live_members_and_prunes_lapsed_ones(run, redis_client,
                                                                   unique_prefix):
    members, placement = unique_prefix + "#g:gm", unique_prefix + "#p:gm"
    now = time.time()
    redis_client.zadd(members, {"gm.live": now, "gm.lapsed": now - 100})
    redis_client.hset(placement, mapping={"gm.live": "0:5", "gm.lapsed": "0:5"})
    assert run("group_members", [members, placement], [now - 10]) == [b"gm.live"]
    assert redis_client.zrange(members, 0, -1) == [b"gm.live"]
    assert redis_client.hkeys(placement) == [b"gm.live"]


def test_group_send_pushes_members_here_and_returns_the_others(run, redis_client,
                                                               unique_prefix):
    members, placement = unique_prefix + "#g:gs", unique_prefix + "#p:gs"
    now = time.time()
    redis_client.zadd(members, {"gs.here": now, "gs.srv!here": now, "gs.srv2!away": now})
    redis_client.hset(placement, mapping={"gs.here": "0:5", "gs.srv!here": "0:5",
                                          "gs.srv2!away": "1:7"})
    deadline = b"%014d" % (now_ms() + 60_000)
    reply = run("group_send", [members, placement, unique_prefix + "#s"],
                [now_ms(), TTL, PROCESS_CAPACITY, STATS_TTL, unique_prefix, 0, deadline,
                 b"payload", now - 10, 100])
    assert reply == [2, b"gs.srv2!away", b"7"]
    assert redis_client.lrange(unique_prefix + "gs.here", 0, -1) == [
        frame_entry(deadline, "gs.here", b"payload")]
    assert redis_client.lrange(unique_prefix + "gs.srv!", 0, -1) == [
        frame_entry(deadline, "gs.srv!here", b"payload")]
    assert redis_client.hget(unique_prefix + "#c:gs.srv!", "gs.srv!here") == b"1"
    assert not redis_client.exists(unique_prefix + "gs.srv2!")


def test_pop_takes_live_entries_drops_expired_ones_and_keeps_counts(run, redis_client,
                                                                    unique_prefix):
    queue, counts = unique_prefix + "pp.srv!", unique_prefix + "#c:pp.srv!"
    expired, first, second = (entry("pp.srv!a", lifetime_ms=-1000), entry("pp.srv!a", b"1"),
                              entry("pp.srv!b", b"2"))
    redis_client.rpush(queue, expired, first, second)
    redis_client.hset(counts, mapping={"pp.srv!a": 2, "pp.srv!b": 1})
    assert run("pop", [queue], [1, now_ms(), counts]) == [first]
    assert redis_client.hgetall(counts) == {b"pp.srv!b": b"1"}
    assert run("pop", [queue], [10, now_ms(), counts]) == [second]
    assert not redis_client.exists(queue)
    assert not redis_client.exists(counts)  # the queue is empty: nothing left to count


def test_uncount_lowers_counts_and_drops_them_once_the_queue_is_empty(run, redis_client,
                                                                       unique_prefix):
    queue, counts = unique_prefix + "u.srv!", unique_prefix + "#c:u.srv!"
    redis_client.rpush(queue, entry("u.srv!a"))
    redis_client.hset(counts, mapping={"u.srv!a": 3})
    assert run("uncount", [counts, queue], ["u.srv!a"]) == 1
    assert redis_client.hget(counts, "u.srv!a") == b"2"
    redis_client.delete(queue)  # a drift: the counts say 2, the queue holds nothing
    assert run("uncount", [counts, queue], ["u.srv!a"]) == 1
    assert not redis_client.exists(counts)
