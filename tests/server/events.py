"""Reading what the echo app (``echo_app.py``) recorded of the messages it received."""

from __future__ import annotations

import time

import requests


def recorded_events(server) -> list[dict]:
    return requests.get(server.url + "/events", timeout=5).json()


def wait_for_event(server, channel: str, timeout: float = 5) -> list[dict]:
    """The recorded messages of ``channel``, once there is at least one (bounded wait)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e for e in recorded_events(server) if e["channel"] == channel]
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no {channel} event within {timeout} s")
