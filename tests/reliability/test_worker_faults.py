"""Workers die or are stopped under load: the others keep serving. SIGKILL loses what the
killed worker held; SIGTERM loses nothing."""

from __future__ import annotations

import signal
import time

from channels.worker import Worker
from tests.reliability.harness import new_gate
from tests.reliability.load import MixedLoad, first_echo, http_request

SOCKETS = 10
SEND_INTERVAL = 0.05


def _receive_one(layer, channel: str, timeout: float) -> dict | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        name, message = layer.receive([channel], block=True)
        if name is not None:
            return message
    return None


def _block_a_worker(d, layer, workers, reply: str):
    """Send a message whose consumer blocks at a gate; (gate, the worker process holding it)."""
    gate = new_gate()
    layer.send("rel.block", {"reply": reply, "gate": gate})
    pid = d.gate_reached(gate)
    assert _receive_one(layer, reply, 5) == {"event": "started", "pid": pid}
    [victim] = [w for w in workers if w.popen.pid == pid]
    return gate, victim


def test_a_worker_killed_mid_consumer_loses_only_what_it_held(deployment, clients,
                                                             record_row):
    d = deployment()
    server, port, workers = d.start(workers=2)
    layer = d.layer()
    load = MixedLoad(clients, port, sockets=SOCKETS, interval=SEND_INTERVAL, http_loops=1)
    load.start()
    time.sleep(1)  # load before the fault
    gate, victim = _block_a_worker(d, layer, workers, "rel.reply.kill")
    [survivor] = [w for w in workers if w is not victim]
    victim.popen.send_signal(signal.SIGKILL)
    assert victim.wait(10) == -signal.SIGKILL
    time.sleep(1.5)  # load goes on with one worker
    echoed_after_kill = clients.run(first_echo(port, 5), 10)
    http_after_kill = clients.run(http_request(port, "/hello/"), 15)
    d.open_gate(gate)  # too late for the killed consumer: its "done" never comes
    done = _receive_one(layer, "rel.reply.kill", 2)
    load.stop()
    tally = load.tally
    unanswered_http = [r for r in load.http_results if r.status != 200]

    record_row(
        "1c worker SIGKILL mid-consumer", f"1 of 2 workers killed while its consumer blocks; "
        f"{SOCKETS} sockets x 20 msg/s + HTTP",
        "the other worker serves on; only what the killed one held is lost (its message, "
        f"and the rest of its batch: <= {Worker.max_batch_size})",
        f"blocked message lost: {done is None}; new socket echoed in "
        f"{echoed_after_kill if echoed_after_kill is None else round(echoed_after_kill, 2)} s; "
        f"HTTP after kill {http_after_kill.status}; {len(unanswered_http)} HTTP unanswered",
        sent=len(tally.sent) + 1, delivered=tally.delivered + (done is not None),
        lost=tally.lost + (done is None), duplicated=tally.duplicated)

    assert survivor.popen.poll() is None and server.popen.poll() is None
    assert done is None
    assert echoed_after_kill is not None and http_after_kill.status == 200
    assert tally.lost <= Worker.max_batch_size, tally.lost_ids()
    assert tally.duplicated == 0
    assert len(unanswered_http) <= 1  # an HTTP request in the killed worker's batch


def test_a_worker_stopped_with_sigterm_under_load_loses_nothing(deployment, clients,
                                                               record_row):
    d = deployment()
    server, port, workers = d.start(workers=2)
    layer = d.layer()
    load = MixedLoad(clients, port, sockets=SOCKETS, interval=SEND_INTERVAL, http_loops=1)
    load.start()
    time.sleep(1)
    gate, victim = _block_a_worker(d, layer, workers, "rel.reply.term")
    [survivor] = [w for w in workers if w is not victim]
    victim.signal(signal.SIGTERM)
    victim.wait_for(r"Shutdown signal received: finishing the current message", timeout=5)
    time.sleep(1)  # load goes on while the stopping worker finishes its message
    d.open_gate(gate)
    done = _receive_one(layer, "rel.reply.term", 5)
    exit_code = victim.wait(10)
    time.sleep(1)  # and after it left
    settled = load.stop()
    tally = load.tally
    unanswered_http = [r for r in load.http_results if r.status != 200]

    record_row(
        "1c worker SIGTERM under load", f"1 of 2 workers stopped while its consumer blocks; "
        f"{SOCKETS} sockets x 20 msg/s + HTTP",
        "its message and the rest of its batch finish, nothing lost, exit 0",
        f"blocked message finished: {done is not None}; exit code {exit_code}; "
        f"{len(unanswered_http)} HTTP unanswered",
        sent=len(tally.sent) + 1, delivered=tally.delivered + (done is not None),
        lost=tally.lost + (done is None), duplicated=tally.duplicated)

    assert done == {"event": "done", "pid": victim.popen.pid}
    assert exit_code == 0
    assert survivor.popen.poll() is None and server.popen.poll() is None
    assert settled and tally.lost == 0, tally.lost_ids()
    assert tally.duplicated == 0
    assert unanswered_http == []
