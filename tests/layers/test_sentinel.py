"""``RedisSentinelChannelLayer`` against a real master and a real sentinel started here."""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest
import redis

from channels.layers.redis import RedisSentinelChannelLayer
from tests.redis_server import free_port, redis_binary, start_server


@pytest.fixture(scope="module")
def sentinel() -> Iterator[tuple[int, str]]:
    """A private master plus one sentinel monitoring it as ``channels-master``."""
    master = start_server(redis_binary()[0])
    workdir = tempfile.mkdtemp(prefix="channels-test-sentinel-")
    port = free_port()
    config = os.path.join(workdir, "sentinel.conf")
    with open(config, "w") as handle:
        handle.write(f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
                     f"sentinel monitor channels-master 127.0.0.1 {master.port} 1\n")
    process = subprocess.Popen([redis_binary()[0], config, "--sentinel"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=2)
        deadline = time.monotonic() + 10
        while True:
            try:
                if client.sentinel_masters():
                    break
            except redis.RedisError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("the test sentinel did not come up", pytrace=False)
            time.sleep(0.05)
        client.close()
        yield port, "channels-master"
    finally:
        process.terminate()
        process.wait(10)
        master.stop()


def test_sentinel_layer_sends_and_receives_through_the_master(sentinel, unique_prefix):
    port, service = sentinel
    layer = RedisSentinelChannelLayer(hosts=[("127.0.0.1", port)], services=[service],
                                      prefix=unique_prefix, blocking_timeout=0.5)
    try:
        layer.send("test.sentinel", {"via": "sentinel"})
        assert layer.receive(["test.sentinel"], block=True) == ("test.sentinel",
                                                                {"via": "sentinel"})
        layer.group_add("g", "test.sentinel")
        layer.send_group("g", {"group": True})

        async def scenario():
            result = await layer.receive_async(["test.sentinel"])
            await layer.close_async()
            return result

        assert asyncio.run(scenario()) == ("test.sentinel", {"group": True})
    finally:
        layer.flush()
        layer.close()


def test_sentinel_layer_discovers_masters_and_takes_the_spec_names(sentinel, unique_prefix):
    port, service = sentinel
    layer = RedisSentinelChannelLayer(sentinels=[("127.0.0.1", port)], prefix=unique_prefix)
    try:
        assert layer.services == [service]
        layer.send("test.found", {})
        assert layer.receive(["test.found"]) == ("test.found", {})
    finally:
        layer.flush()
        layer.close()


@pytest.mark.parametrize("options", [{"hosts": ["redis://127.0.0.1:26379"]},
                                     {"hosts": "127.0.0.1"},
                                     {"services": "one-name"}])
def test_sentinel_layer_refuses_invalid_options(options):
    with pytest.raises(ValueError):
        RedisSentinelChannelLayer(**options)
