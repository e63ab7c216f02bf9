"""Signals fired around consumers and by workers (Channels 1.1 names).

``consumer_started`` / ``consumer_finished`` bracket every consumer call; the pending-send
buffer of ``channels.message`` hangs off them so any code that runs consumers the same way (the
worker, the test client) gets buffered sends for free.
"""

from __future__ import annotations

from django.dispatch import Signal

consumer_started = Signal()
consumer_finished = Signal()
# Sent once a worker has computed its channels and is about to receive (sender = the worker).
worker_ready = Signal()
# Sent once per ``runworker`` process, before any worker thread starts (sender = the worker).
worker_process_ready = Signal()
