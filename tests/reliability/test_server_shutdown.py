"""``channels-server`` stopped with SIGTERM while it holds many open WebSockets and a slow
HTTP response: every socket is closed with 1001 at once, and the response still completes."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from tests.reliability.harness import new_gate
from tests.reliability.load import Tally, http_request, open_echo_sockets

#: Open sockets in the CI form; ``CHANNELS_RELIABILITY_LONG=1`` runs the long form.
SOCKETS = 300
LONG_SOCKETS = 1000
SHUTDOWN_TIMEOUT = 10
LONG = os.environ.get("CHANNELS_RELIABILITY_LONG") == "1"


@pytest.mark.timeout(90 if LONG else 60)
def test_sigterm_closes_every_socket_with_1001_and_finishes_a_slow_response(
        deployment, clients, record_row):
    count = LONG_SOCKETS if LONG else SOCKETS
    d = deployment()
    server, port, workers = d.start(
        workers=2, server_args=("--shutdown-timeout", str(SHUTDOWN_TIMEOUT)))
    tally = Tally()
    sockets = clients.run(open_echo_sockets(f"ws://127.0.0.1:{port}/echo/", count, tally),
                          60 if LONG else 30)
    gate = new_gate()
    slow = clients.submit(http_request(port, f"/slow/?gate={gate}", timeout=30))
    d.gate_reached(gate)  # the view is running: the response is in flight

    stopped_at = time.monotonic()
    server.signal(signal.SIGTERM)

    async def all_closed() -> None:
        await asyncio.gather(*(socket.closed.wait() for socket in sockets))

    clients.run(asyncio.wait_for(all_closed(), SHUTDOWN_TIMEOUT), SHUTDOWN_TIMEOUT + 5)
    last_close = max(at for _, at in tally.closes) - stopped_at
    codes = sorted({code for code, _ in tally.closes}, key=str)
    refused = clients.run(http_request(port, "/hello/", timeout=2), 5)
    still_running = server.popen.poll() is None  # waiting for the slow response
    d.open_gate(gate)
    response = slow.result(15)
    exit_code = server.wait(SHUTDOWN_TIMEOUT + 5)
    exited_after = time.monotonic() - stopped_at

    record_row(
        "1d server SIGTERM" + (" (long form)" if LONG else ""),
        f"{count} open WebSockets + 1 slow HTTP response in flight",
        f"all closed 1001 within the grace period ({SHUTDOWN_TIMEOUT} s); the response "
        "completes; new connections refused; exit 0",
        f"{len(tally.closes)}/{count} closed, codes {codes}, last {last_close:.2f} s after "
        f"SIGTERM; slow response {response.status} {response.body!r}; new connection: "
        f"{refused.error or refused.status}; exit {exit_code} after {exited_after:.1f} s")

    assert len(tally.closes) == count and codes == [1001]
    assert last_close < SHUTDOWN_TIMEOUT
    assert still_running
    assert refused.status is None and "Connect" in refused.error  # the listener is closed
    assert (response.status, response.body) == (200, b"slow done")
    assert exit_code == 0
