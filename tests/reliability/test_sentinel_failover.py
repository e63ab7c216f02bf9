"""The Sentinel-managed master is killed under load: the sentinels promote the replica and
``RedisSentinelChannelLayer`` follows it, in the server and in the workers, without a restart.

What may be lost is what the old master held and had not passed on to the replica (replication
is asynchronous) and what was in flight on connections to it when it died; frames the server
could not send meanwhile are queued and retried, as during any Redis outage.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.reliability.load import MixedLoad, first_echo, http_request
from tests.reliability.sentinel_cluster import (
    DOWN_AFTER_MS,
    FAILOVER_TIMEOUT_MS,
    SERVICE,
    SentinelCluster,
)

SOCKETS = 10
SEND_INTERVAL = 0.25
#: From the kill until new sockets echo and HTTP answers 200 through the new master: the
#: sentinels' own delay (down-after 1 s, a quorum vote, the promotion: 2 to 6 s measured) plus
#: the clients finding the new master on their next connection error.
RECOVERY_BOUND = 10.0
#: A frame sent this long before the kill may still have been on its way to the replica.
REPLICATION_WINDOW = 1.0
HTTP_TIMEOUT = 3


@pytest.fixture
def cluster():
    made = SentinelCluster()
    yield made
    made.close()


async def _http_200_at(port: int, timeout: float) -> float | None:
    """The monotonic time GET /hello/ first answers 200, asking again after each refusal."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        result = await http_request(port, "/hello/", timeout=HTTP_TIMEOUT + 2)
        if result.status == 200:
            return result.ended
        await asyncio.sleep(0.1)  # a 503 while the layer finds the new master: ask again soon
    return None


async def _recovery(port: int, timeout: float) -> tuple[float | None, float | None]:
    """(new socket echoed, HTTP 200), each the monotonic time it first happened, probed
    together so neither waits for the other."""
    async def echo_at() -> float | None:
        took = await first_echo(port, timeout)
        return None if took is None else time.monotonic()

    return tuple(await asyncio.gather(echo_at(), _http_200_at(port, timeout)))


@pytest.mark.timeout(45)
def test_master_killed_sentinels_promote_the_replica_and_the_layer_follows(
        cluster, deployment, clients, record_row):
    ready_after = cluster.wait_until_ready()
    d = deployment(shards=0, socket_timeout=2)
    d.env.update({
        "DJANGO_SETTINGS_MODULE": "tests.reliability.project.sentinel_settings",
        "REL_SENTINELS": ",".join(f"{host}:{port}" for host, port in cluster.sentinels),
        "REL_SENTINEL_SERVICE": SERVICE,
    })
    server, port, workers = d.start(workers=2, server_args=("--http-timeout", str(HTTP_TIMEOUT)))
    load = MixedLoad(clients, port, sockets=SOCKETS, interval=SEND_INTERVAL, http_loops=1)
    load.start()
    time.sleep(1.5)  # steady load before the fault (the load's duration, not a wait)

    cluster.kill_master()
    killed_at = time.monotonic()
    promoted_after = cluster.wait_for_promotion(RECOVERY_BOUND + 5)
    echo_at, http_at = clients.run(_recovery(port, RECOVERY_BOUND + 5), RECOVERY_BOUND + 15)
    echo_after = None if echo_at is None else echo_at - killed_at
    http_after = None if http_at is None else http_at - killed_at
    recovered_at = time.monotonic()
    time.sleep(1.5)  # load goes on through the new master
    open_sockets = load.open_sockets()
    settled = load.stop()
    alive = [process.popen.poll() is None for process in (server, *workers)]

    tally = load.tally
    lost = tally.lost_ids()
    in_switch = [mid for mid, at in tally.sent.items()
                 if killed_at - REPLICATION_WINDOW <= at <= recovered_at]
    lost_outside = [mid for mid in lost if mid not in set(in_switch)]
    http = load.http_results
    http_lost = [r for r in http if r.status is None]

    def seconds(value: float | None) -> str:
        return "never" if value is None else f"{value:.2f} s"

    record_row(
        "1e Sentinel failover",
        f"master killed (SIGKILL) under {SOCKETS} sockets x {round(1 / SEND_INTERVAL)} msg/s + "
        f"HTTP; 1 replica, 3 sentinels, quorum 2, down-after {DOWN_AFTER_MS} ms, "
        f"failover-timeout {FAILOVER_TIMEOUT_MS} ms",
        f"replica promoted; new socket echoes and HTTP 200 <= {RECOVERY_BOUND:.0f} s after the "
        "kill; server and workers stay up; loss only among frames in flight or not yet "
        "replicated (sent from 1 s before the kill until the layer was back)",
        f"sentinels ready {ready_after:.1f} s after start; promoted after "
        f"{seconds(promoted_after)}; new socket echoed {seconds(echo_after)}, HTTP 200 "
        f"{seconds(http_after)} after the kill; {open_sockets}/{SOCKETS} sockets open at the "
        f"end; {len(lost)} lost of {len(in_switch)} sent in the switch, {len(lost_outside)} "
        f"outside it; HTTP {sum(r.status == 200 for r in http)} x 200, "
        f"{sum(r.status == 503 for r in http)} x 503, {len(http_lost)} unanswered; processes "
        f"up: {all(alive)}",
        sent=len(tally.sent), delivered=tally.delivered, lost=tally.lost,
        duplicated=tally.duplicated)

    assert promoted_after is not None
    assert echo_after is not None and echo_after <= RECOVERY_BOUND
    assert http_after is not None and http_after <= RECOVERY_BOUND
    assert all(alive)
    assert open_sockets == SOCKETS
    assert lost_outside == [], lost_outside
    assert len(lost) <= len(in_switch)
    assert settled == (not lost)
