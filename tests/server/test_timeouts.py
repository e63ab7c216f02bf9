"""The deadline sweep behind the HTTP timeouts, on Twisted's deterministic clock.

The timeouts themselves (408, 503, idle close) are tested end to end with real sockets in
``test_http.py`` and ``test_http_limits.py``; these pin down the sweep's own promises: never
early, at most one interval late, cancel and re-arm work, and an idle sweeper schedules nothing.
"""

from __future__ import annotations

import logging

import pytest
from twisted.internet.task import Clock

from channels.server.timeouts import MAX_SWEEP_INTERVAL, DeadlineSweeper


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sweeper(clock: Clock) -> DeadlineSweeper:
    return DeadlineSweeper(clock, clock=clock.seconds)


def test_fires_after_its_duration_never_before(clock, sweeper):
    fired = []
    deadline = sweeper.deadline(lambda: fired.append(clock.seconds()))
    deadline.arm(2.0)
    assert deadline.active()
    clock.advance(1.9)
    assert fired == []
    clock.advance(0.1)  # exactly due
    clock.advance(0.2)  # one interval (2.0 / 10) at most
    assert len(fired) == 1
    assert 2.0 <= fired[0] <= 2.2
    assert not deadline.active()
    clock.advance(10)
    assert len(fired) == 1  # once only


def test_rearming_pushes_the_deadline_out_and_cancel_stops_it(clock, sweeper):
    fired = []
    rearmed = sweeper.deadline(lambda: fired.append("rearmed"))
    cancelled = sweeper.deadline(lambda: fired.append("cancelled"))
    rearmed.arm(1.0)
    cancelled.arm(1.0)
    clock.advance(0.8)
    rearmed.arm(1.0)  # e.g. a body chunk arrived
    cancelled.cancel()
    assert not cancelled.active()
    clock.advance(0.5)
    assert fired == []
    clock.advance(0.7)
    assert fired == ["rearmed"]


def test_deadlines_of_different_durations_fire_in_due_order(clock, sweeper):
    fired = []
    for duration in (3.0, 0.5, 1.5):
        sweeper.deadline(lambda d=duration: fired.append(d)).arm(duration)
    for _ in range(40):
        clock.advance(0.1)
    assert fired == [0.5, 1.5, 3.0]


def test_a_shorter_duration_makes_an_armed_sweep_come_sooner(clock, sweeper):
    fired = []
    sweeper.deadline(lambda: fired.append("long")).arm(100.0)  # sweeps every second
    sweeper.deadline(lambda: fired.append("short")).arm(0.2)
    clock.advance(0.25)
    assert fired == ["short"]


def test_an_idle_sweeper_schedules_nothing(clock, sweeper):
    deadline = sweeper.deadline(lambda: None)
    assert clock.getDelayedCalls() == []
    deadline.arm(0.5)
    assert len(clock.getDelayedCalls()) == 1
    deadline.cancel()
    clock.advance(MAX_SWEEP_INTERVAL)
    assert clock.getDelayedCalls() == []
    assert sweeper.pending() == 0


def test_a_callback_may_rearm_and_a_failing_one_spares_the_others(clock, sweeper, caplog):
    fired = []

    def again() -> None:
        fired.append(clock.seconds())
        if len(fired) < 3:
            repeating.arm(1.0)

    def broken() -> None:
        raise RuntimeError("boom")

    repeating = sweeper.deadline(again)
    repeating.arm(1.0)
    sweeper.deadline(broken).arm(1.0)
    with caplog.at_level(logging.ERROR, logger="channels.server"):
        for _ in range(50):
            clock.advance(0.1)
    assert len(fired) == 3
    assert fired[1] - fired[0] >= 1.0 and fired[2] - fired[1] >= 1.0
    assert "Error in a timeout handler" in caplog.text
    assert clock.getDelayedCalls() == []  # exactly one sweep call at a time, none left


def test_cli_freezes_startup_objects_once_listening():
    # channels-server passes this as ready_callback: what start-up allocated (Django, Twisted,
    # the layer) leaves the collector's reach, so full collections stay short under load.
    import gc

    from channels.server.cli import freeze_startup_objects

    assert gc.get_freeze_count() == 0
    try:
        freeze_startup_objects([("127.0.0.1", 8000)])
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()


def test_finished_requests_are_freed_without_the_cyclic_gc():
    import os
    import subprocess
    import sys

    from tests.server.conftest import ROOT

    result = subprocess.run([sys.executable, "-m", "tests.server.refcount_runner"], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "statuses=[200, 503]" in result.stdout, result.stdout + result.stderr
    assert "live_requests_and_channels=(0, 0)" in result.stdout, result.stdout
