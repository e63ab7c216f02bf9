"""Several processes sending and receiving through one Redis layer: each message exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import Counter

import pytest

from channels.layers.redis import RedisChannelLayer

WORKER = textwrap.dedent("""
    import json, sys
    from channels.layers.redis import RedisChannelLayer

    role, number, prefix, hosts = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
    layer = RedisChannelLayer(hosts=hosts, prefix=prefix, capacity=10_000,
                              blocking_timeout=0.3)
    channels = ["proc.a", "proc.b", "proc.server!"]
    if role == "send":
        for index in range(300):
            message = {"id": f"{number}-{index}"}
            if index % 3 == 2:
                layer.send(f"proc.server!{number}", message)
            else:
                layer.send(channels[index % 3], message)
        print(json.dumps([]))
    else:
        seen, idle = [], 0
        while idle < 3:  # three empty blocking receives in a row: the senders are done
            batch = layer.receive_batch(channels, 10, block=True)
            idle = 0 if batch else idle + 1
            seen += [message["id"] for _, message in batch]
        print(json.dumps(seen))
    layer.close()
""")


@pytest.mark.parametrize("shards", [1, 2])
def test_processes_deliver_every_message_exactly_once(shards, redis_url, request,
                                                      unique_prefix):
    hosts = [redis_url]
    if shards == 2:
        hosts.append(request.getfixturevalue("second_redis_url"))
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}

    def start(role: str, number: int) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", WORKER, role, str(number), unique_prefix,
                                 *hosts], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    receivers = [start("receive", n) for n in range(3)]
    senders = [start("send", n) for n in range(3)]
    received: list[str] = []
    try:
        for process in senders + receivers:
            out, err = process.communicate(timeout=30)
            assert process.returncode == 0, err
            received += json.loads(out)
    finally:
        for process in senders + receivers:
            if process.poll() is None:
                process.kill()
                process.wait(5)
        cleaner = RedisChannelLayer(hosts=hosts, prefix=unique_prefix)
        cleaner.flush()
        cleaner.close()
    counts = Counter(received)
    assert len(counts) == 900, f"lost {900 - len(counts)} messages"
    assert max(counts.values()) == 1, "a message was delivered twice"
