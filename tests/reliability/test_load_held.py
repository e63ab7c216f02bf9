"""Load held for a while on one ``channels-server`` with two workers: many sockets each sending
once a second, every echo counted and checked to come back on its own socket, the server's
memory compared between the end of the warm-up and the end; and many idle sockets held open,
to price a connection in server memory.

``CHANNELS_RELIABILITY_LONG=1`` runs the long form (more sockets, longer).
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from collections import Counter

import pytest

from tests.reliability.load import CLIENT_TIMEOUT, Tally, first_echo, open_echo_sockets

LONG = os.environ.get("CHANNELS_RELIABILITY_LONG") == "1"
#: Sockets sending, and for how long (one message a second each).
SENDERS, SEND_SECONDS = (2000, 60) if LONG else (500, 15)
#: The server's memory is read this long after the sends begin: by then every code path of
#: the run has been taken and its caches and buffers have been allocated.
WARM_UP_SECONDS = 3
#: How far the server's memory may grow from the warm-up to the end and still be flat:
#: allocator slack and a Python heap that is not returned at once, not a per-message leak
#: (500 sockets x 15 messages leaking 1 KiB each would already be 7 MB over 25 %).
RSS_GROWTH_FACTOR = 1.25
RSS_GROWTH_SLACK_KB = 10 * 1024
#: The layer's per-channel capacity in the long form. All 2,000 sockets' frames share one
#: ``websocket.receive`` channel; the default (100) is 50 ms of their frames, and when the
#: workers on a busy 2-core machine fall that far behind for over a second the server closes
#: sockets with 1013 (its documented answer to a full channel). A second of frames fits here.
LONG_CAPACITY = 2000
#: Idle sockets held open at once.
IDLE_SOCKETS = 10_000 if LONG else 1_000
#: Bound on the drain: echoes still due when the last message has been sent.
DRAIN_SECONDS = 10


def rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` in KiB (VmRSS of /proc/<pid>/status)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def raise_open_files(needed: int, pid: int | None = None) -> int:
    """Raise the soft RLIMIT_NOFILE of ``pid`` (this process if None) towards the hard limit,
    as far as ``needed``; the soft limit now in force."""
    soft, hard = resource.prlimit(pid or 0, resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.prlimit(pid or 0, resource.RLIMIT_NOFILE, (wanted, hard))
        soft = wanted
    return soft


async def close_all(sockets: list) -> None:
    await asyncio.gather(*(socket.close() for socket in sockets))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@pytest.mark.timeout(150 if LONG else 30)
def test_many_sockets_held_under_load_lose_nothing_and_memory_stays_flat(
        deployment, clients, record_row):
    raise_open_files(SENDERS + 256)
    d = deployment()
    if LONG:
        d.env["REL_CAPACITY"] = str(LONG_CAPACITY)
    server, port, workers = d.start(workers=2)
    raise_open_files(SENDERS + 256, server.popen.pid)
    pid = server.popen.pid
    tally = Tally()
    rss: dict[str, int] = {"start": rss_kb(pid)}

    async def run() -> tuple[list, bool, float]:
        sockets = await open_echo_sockets(f"ws://127.0.0.1:{port}/echo/", SENDERS, tally,
                                          concurrency=100)
        rss["open"] = rss_kb(pid)
        stop = asyncio.Event()  # never set: each socket sends its SEND_SECONDS messages
        started = time.monotonic()
        # Socket i starts i/N into the first second, so the sends are spread evenly.
        senders = [asyncio.create_task(socket.send_numbered(SEND_SECONDS, 1.0, stop,
                                                            delay=number / SENDERS))
                   for number, socket in enumerate(sockets)]
        await asyncio.sleep(WARM_UP_SECONDS)  # the warm-up's length, then a reading
        rss["warm"] = rss_kb(pid)
        await asyncio.gather(*senders)
        settled = await tally.settled(DRAIN_SECONDS)
        elapsed = time.monotonic() - started
        rss["end"] = rss_kb(pid)
        return sockets, settled, elapsed

    sockets, settled, elapsed = clients.run(run(), SEND_SECONDS * 2 + DRAIN_SECONDS + 60)
    open_at_end = sum(not socket.closed.is_set() for socket in sockets)
    early_closes = Counter(code for code, _ in tally.closes)  # before the clients close
    clients.run(close_all(sockets), CLIENT_TIMEOUT * 3)
    alive = [process.popen.poll() is None for process in (server, *workers)]
    bound_kb = rss["warm"] * RSS_GROWTH_FACTOR + RSS_GROWTH_SLACK_KB
    p50, p99 = (percentile(tally.round_trips, q) * 1000 for q in (0.5, 0.99))
    mib = {key: value / 1024 for key, value in rss.items()}

    record_row(
        "4a load held" + (" (long form)" if LONG else ""),
        f"{SENDERS} WebSockets on 1 server + 2 workers, each sending 1 msg/s for "
        f"{SEND_SECONDS} s (sends spread over the second)"
        + (f"; layer capacity {LONG_CAPACITY}" if LONG else ""),
        "every message echoed once on its own socket; server RSS at the end <= warm-up "
        f"({WARM_UP_SECONDS} s) x {RSS_GROWTH_FACTOR} + {RSS_GROWTH_SLACK_KB // 1024} MB; "
        "every process up",
        f"{open_at_end}/{SENDERS} open at the end"
        + (f" (closed early: {dict(early_closes)}; {tally.errors[:2]})" if early_closes else "")
        + f"; {len(tally.misrouted)} misrouted; round "
        f"trip p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {max(tally.round_trips) * 1000:.0f} ms; "
        f"server RSS {mib['start']:.0f} MiB idle, {mib['open']:.0f} with the sockets open, "
        f"{mib['warm']:.1f} after warm-up, {mib['end']:.1f} at the end; sends took "
        f"{elapsed:.1f} s",
        sent=len(tally.sent), delivered=tally.delivered, lost=tally.lost,
        duplicated=tally.duplicated)

    assert all(alive)
    assert len(tally.sent) == SENDERS * SEND_SECONDS
    assert settled and tally.lost == 0, tally.lost_ids()[:20]
    assert tally.duplicated == 0
    assert tally.misrouted == [], tally.misrouted[:20]
    assert open_at_end == SENDERS
    assert rss["end"] <= bound_kb, rss


@pytest.mark.timeout(240 if LONG else 30)
def test_idle_sockets_held_open_cost_little_memory_and_close_cleanly(
        deployment, clients, record_row):
    open_files = raise_open_files(IDLE_SOCKETS + 256)
    assert open_files >= IDLE_SOCKETS + 256, f"RLIMIT_NOFILE {open_files} is too low"
    d = deployment()
    server, port, workers = d.start(workers=2)
    assert raise_open_files(IDLE_SOCKETS + 256, server.popen.pid) >= IDLE_SOCKETS + 256
    pid = server.popen.pid
    # One socket through the whole path first, so what is measured is the sockets, not the
    # first use of the code that serves them.
    assert clients.run(first_echo(port, 10), 15) is not None
    before = rss_kb(pid)
    tally = Tally()
    opened_at = time.monotonic()
    sockets = clients.run(open_echo_sockets(f"ws://127.0.0.1:{port}/echo/", IDLE_SOCKETS,
                                            tally, concurrency=100), 200 if LONG else 20)
    opening = time.monotonic() - opened_at
    after = rss_kb(pid)
    echoed = clients.run(first_echo(port, 5), 10)  # the server still serves newcomers

    closed_at = time.monotonic()
    clients.run(close_all(sockets), 60 if LONG else 15)
    closing = time.monotonic() - closed_at
    codes = sorted({code for code, _ in tally.closes}, key=str)
    alive = [process.popen.poll() is None for process in (server, *workers)]
    per_socket = (after - before) / IDLE_SOCKETS

    record_row(
        "4b idle sockets held" + (" (long form)" if LONG else ""),
        f"{IDLE_SOCKETS} idle WebSockets opened on 1 server + 2 workers, then closed by the "
        "clients",
        "all open at once; server RSS per socket reported; a new socket still echoes; all "
        "closed 1000; every process up",
        f"opened in {opening:.1f} s; server RSS {before / 1024:.0f} MiB before, "
        f"{after / 1024:.0f} MiB with them open: {per_socket:.1f} KiB per socket; new socket "
        f"echoed: {echoed is not None}; {len(tally.closes)}/{IDLE_SOCKETS} closed in "
        f"{closing:.1f} s, codes {codes}")

    assert all(alive)
    assert echoed is not None
    assert len(tally.closes) == IDLE_SOCKETS and codes == [1000]
