"""The twisted extension: ``receive_twisted`` gives a Deferred under either kind of reactor.

Each case runs in its own interpreter because a Twisted reactor can be installed and run only
once per process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import sys, threading
    if sys.argv[1] == "asyncio":
        from twisted.internet import asyncioreactor
        asyncioreactor.install()
    from twisted.internet import reactor
    if sys.argv[2] == "inmemory":
        from channels.layers.inmemory import InMemoryChannelLayer
        layer = InMemoryChannelLayer(blocking_timeout=5)
    else:
        from channels.layers.redis import RedisChannelLayer
        layer = RedisChannelLayer(hosts=[sys.argv[3]], prefix=sys.argv[4], blocking_timeout=5)
    results = []

    def received(result):
        results.append(result)
        reactor.stop()

    def failed(failure):
        results.append(failure.getTraceback())
        reactor.stop()

    def start():
        layer.receive_twisted(["twisted.test"]).addCallbacks(received, failed)
        # Sent from another thread while the Deferred waits: it must fire without polling.
        threading.Timer(0.2, layer.send, ("twisted.test", {"via": "twisted"})).start()

    reactor.callWhenRunning(start)
    reactor.callLater(10, reactor.stop)
    reactor.run()
    layer.flush()
    print(results)
""")


@pytest.mark.parametrize("reactor", ["asyncio", "default"])
@pytest.mark.parametrize("backend", ["inmemory", "redis"])
def test_receive_twisted_fires_with_the_message(reactor, backend, redis_url, unique_prefix):
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT, reactor, backend, redis_url, unique_prefix],
        capture_output=True, text=True, timeout=20,
        env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[('twisted.test', {'via': 'twisted'})]", (
        completed.stdout + completed.stderr)
