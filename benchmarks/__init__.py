"""Benchmarks, each measured against a baseline in the same run; JSON lines out.

Run them from the repository root as modules (``python -m benchmarks.layer``,
``python -m benchmarks.server``, ``python -m benchmarks.http_requests``), so that the
repository's ``channels`` and ``tests`` packages import and nothing here shadows the standard
library. What they share (ports, processes, a private Redis, output) is in ``harness.py``.
``python -m benchmarks.side_by_side`` compares the whole stack with Channels 4: its stacks
are started by ``stacks.py`` and loaded by ``scenarios.py``.
"""
