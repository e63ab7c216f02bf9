"""``channels.layers`` in a plain Python process: no Django settings, not even Django imported."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from channels.layers.redis import RedisChannelLayer

SERVICE = textwrap.dedent("""
    import sys
    from channels.layers.redis import RedisChannelLayer

    assert "django" not in sys.modules, "importing the layer pulled in Django"
    layer = RedisChannelLayer(hosts=[sys.argv[1]], prefix=sys.argv[2], blocking_timeout=0.5)
    print("ready", flush=True)
    answered = 0
    for _ in range(40):  # at most ~20 s, then give up
        channel, request = layer.receive(["service.requests"], block=True)
        if channel is None:
            continue
        if request.get("stop"):
            break
        layer.send(request["reply_channel"], {"sum": sum(request["numbers"])})
        answered += 1
    layer.close()
    print("answered", answered, flush=True)
""")


def test_a_plain_process_serves_requests_over_reply_channels(redis_url, unique_prefix):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    service = subprocess.Popen([sys.executable, "-c", SERVICE, redis_url, unique_prefix],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    layer = RedisChannelLayer(hosts=[redis_url], prefix=unique_prefix, blocking_timeout=5)
    try:
        assert service.stdout.readline().strip() == "ready"
        for numbers in ([1, 2, 3], [10, -4]):
            reply_channel = layer.new_channel("client.reply?")
            layer.send("service.requests", {"reply_channel": reply_channel, "numbers": numbers})
            assert layer.receive([reply_channel], block=True) == (reply_channel,
                                                                  {"sum": sum(numbers)})
        layer.send("service.requests", {"stop": True})
        out, err = service.communicate(timeout=10)
        assert service.returncode == 0, err
        assert "answered 2" in out
    finally:
        if service.poll() is None:
            service.kill()
            service.wait(5)
        layer.flush()
        layer.close()
