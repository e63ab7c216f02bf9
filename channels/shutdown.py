"""Graceful shutdown on SIGTERM/SIGINT, shared by ``runworker`` and ``rundelay``.

Both run a loop that takes work from the layer; stopping is left to that loop rather than done
in the handler, so work already taken from the layer (even mid-receive) is never abandoned.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any


class GracefulShutdown:
    """The first signal asks the loop to stop after the work in hand; a second exits at once.

    A subclass sets ``shutdown_logger`` and ``unit_of_work`` (what it finishes: "message",
    "step"), keeps ``in_job`` true while busy, and implements ``stop()``.
    """

    shutdown_logger: logging.Logger = logging.getLogger("channels")
    unit_of_work = "message"
    in_job = False
    _signals_received = 0

    def stop(self) -> None:
        raise NotImplementedError

    def install_signal_handler(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            self.shutdown_logger.warning(
                "Signal handlers can only be installed in the main thread; skipped")
            return
        signal.signal(signal.SIGTERM, self.sigterm_handler)
        signal.signal(signal.SIGINT, self.sigterm_handler)

    def sigterm_handler(self, signo: int, stack_frame: Any) -> None:
        """First signal: finish the work in hand and stop. A second one: stop right now."""
        self._signals_received += 1
        if self._signals_received > 1:
            self.shutdown_logger.warning(
                "Second shutdown signal: exiting without finishing the current %s",
                self.unit_of_work)
            raise SystemExit(1)
        self.shutdown_logger.info(
            "Shutdown signal received: %s",
            f"finishing the current {self.unit_of_work}" if self.in_job else "stopping")
        self.stop()
