"""One of two Redis shards goes down: what lives on the other keeps working, what lives on the
lost one fails fast with the layer's error, and both come back together."""

from __future__ import annotations

import time

import pytest

from channels.layers.redis import RedisLayerUnavailable
from channels.layers.redis.errors import SHARD_RETRY_INTERVAL
from tests.reliability.harness import lines_matching
from tests.reliability.load import first_echo, http_request
from tests.reliability.project.consumers import JOB_CHANNELS

JOBS = 40
GROUP_SENDS = 10
#: A receiver skips a failed shard for SHARD_RETRY_INTERVAL (1 s) and may be in a blocking pop
#: on the other shard for blocking_timeout (1 s) when it comes back: work on the returning
#: shard waits up to both (new sockets, on the live shard's websocket.receive, do not).
RECOVERY_BOUND = SHARD_RETRY_INTERVAL + 1.0 + 0.5


def _on_shard(layer, shard: int, names) -> str:
    return next(name for name in names if layer._shard_of(name) == shard)


def _collect(layer, channel: str, count: int, timeout: float) -> list[dict]:
    received, deadline = [], time.monotonic() + timeout
    while len(received) < count and time.monotonic() < deadline:
        received += [message for _, message in
                     layer.receive_batch([channel], count - len(received), block=True)]
    return received


def test_one_shard_down_leaves_the_other_working(deployment, clients, record_row):
    d = deployment(shards=2, socket_timeout=2)
    server, port, workers = d.start(workers=2)
    layer = d.layer()
    # The stopped shard holds http.request and websocket.connect; the live one
    # websocket.receive, rel.group and some of the job channels.
    down, live = layer._shard_of("http.request"), 1 - layer._shard_of("http.request")
    assert layer._shard_of("rel.group") == live
    live_job, down_job = _on_shard(layer, live, JOB_CHANNELS), _on_shard(layer, down,
                                                                          JOB_CHANNELS)
    replies = [f"rel.reply.{number}" for number in range(200)]
    live_reply, down_reply = _on_shard(layer, live, replies), _on_shard(layer, down, replies)
    group = _on_shard(layer, live, [f"rel-group-{number}" for number in range(200)])
    layer.group_add(group, live_reply)
    layer.group_add(group, down_reply)
    assert clients.run(http_request(port, "/hello/"), 15).status == 200

    d.redis[down].server.stop()
    started = time.monotonic()
    with pytest.raises(RedisLayerUnavailable, match=d.redis[down].url):
        layer.send(down_job, {"n": 0, "reply": live_reply})
    send_failed_in = time.monotonic() - started
    http_down = clients.run(http_request(port, "/hello/"), 15)
    for number in range(JOBS):
        layer.send(live_job, {"n": number, "reply": live_reply})
    jobs_done = _collect(layer, live_reply, JOBS, 10)
    for number in range(GROUP_SENDS):
        layer.send("rel.group", {"group": group, "n": number})
    group_received = _collect(layer, live_reply, GROUP_SENDS, 10)

    d.redis[down].restart()
    up_at = time.monotonic()
    http_back, deadline = None, up_at + 10
    while http_back is None and time.monotonic() < deadline:
        answer = clients.run(http_request(port, "/hello/"), 15)
        http_back = time.monotonic() - up_at if answer.status == 200 else None
    echoed_after = clients.run(first_echo(port, 10), 15)
    layer.send(down_job, {"n": -1, "reply": down_reply})
    down_job_back = _collect(layer, down_reply, 1, 5)
    shard_lines = [lines_matching(w, r"Redis shard .* unreachable; receiving from the other "
                                     r"shards") for w in workers]
    back_lines = [lines_matching(w, r"Redis shard .* reachable again after") for w in workers]

    record_row(
        "1b one shard of two down: live shard", "shard with http.request stopped, then "
        "restarted empty", f"{JOBS} jobs and {GROUP_SENDS} group sends on the other shard "
        "all handled",
        f"{len(jobs_done)}/{JOBS} jobs answered; {len(group_received)}/{GROUP_SENDS} group "
        "messages reached the member on the live shard (the other member missed them)",
        sent=JOBS + GROUP_SENDS, delivered=len(jobs_done) + len(group_received),
        lost=JOBS + GROUP_SENDS - len(jobs_done) - len(group_received), duplicated=0)
    record_row(
        "1b one shard of two down: lost shard", "same",
        "its work fails fast with the layer's error; back <= 2.5 s after restart (skip "
        "interval + a blocking pop on the live shard)",
        f"send raised RedisLayerUnavailable in {send_failed_in * 1000:.0f} ms; HTTP "
        f"{http_down.status} in {http_down.ended - http_down.started:.1f} s; after restart "
        f"HTTP 200 in {http_back if http_back is None else round(http_back, 2)} s, new socket "
        f"echoed in {echoed_after if echoed_after is None else round(echoed_after, 2)} s; "
        f"worker lines: {[len(lines) for lines in shard_lines]} down, "
        f"{[len(lines) for lines in back_lines]} back")

    assert server.popen.poll() is None and all(w.popen.poll() is None for w in workers)
    assert send_failed_in < 0.5
    assert http_down.status == 503 and http_down.ended - http_down.started < 2
    assert sorted(message["n"] for message in jobs_done) == list(range(JOBS))
    assert sorted(message["n"] for message in group_received) == list(range(GROUP_SENDS))
    assert http_back is not None and http_back < RECOVERY_BOUND
    assert echoed_after is not None and echoed_after < RECOVERY_BOUND
    assert [message["n"] for message in down_job_back] == [-1]
    # Each worker says once that the shard went away and once that it is back.
    assert [len(lines) for lines in shard_lines] == [1, 1], shard_lines
    assert [len(lines) for lines in back_lines] == [1, 1], back_lines
    assert all("Traceback" not in w.output() for w in workers)
