"""This package against Channels 4, both up at once on one private Redis, alternated run by run.

    .venv/bin/python -m benchmarks.side_by_side [--reps 3] [--scenario ws_echo ...] [--quick]
                                                [--markdown] [--cache DIR] [--workers 2]

Stacks: ``ours`` is ``channels-server`` + ``--workers`` × ``manage.py runworker`` serving the
example project (its ``probes`` routes) on the Redis layer (database 1); ``channels4`` is
one ``daphne`` serving a Channels 4 project rendered from ``benchmarks/peers/channels4/`` with
``channels_redis`` (database 0), from a venv made once under ``--cache``. Both serve ``GET
/hello``, an echo socket at ``/ws/echo/`` and a broadcast socket at ``/ws/group/``.

Scenarios (``benchmarks/scenarios.py``): ``ws_echo``, ``ws_connect``, ``ws_group``, ``http``.
Each repetition runs every scenario on ``ours`` then on ``channels4``, so load that comes and
goes on a shared machine hits both. Before each run the stacks and Redis are left to go idle;
the run records the CPU time (``/proc/<pid>/stat`` user + system) of every process of the
stack and of Redis, and reports (stack + Redis) CPU per message, connection, delivery or
request. The client shares the CPUs with the servers: compare CPU per unit as well as rates.

Output: one JSON line per run, one median line per (stack, scenario), one ratio line per
scenario (ours / channels4), and with ``--markdown`` a table of the medians.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import emit, medians, ratio
from benchmarks.scenarios import SCENARIOS, Params, run_scenario
from benchmarks.stacks import (
    DEFAULT_CACHE,
    Stack,
    cpu_snapshot,
    ensure_venv,
    start_channels4,
    start_ours,
    wait_idle,
    wait_ready,
    write_project,
)

logger = logging.getLogger("channels.benchmarks.side_by_side")

STACKS = ("ours", "channels4")
# Figures whose median and ratio are reported; a scenario reports the ones it measures.
SUMMARY_KEYS = ("rate", "p50_ms", "p99_ms", "cpu_ms_per_unit", "lost", "mismatched",
                "duplicated", "failed", "errors")
UNITS = {"ws_echo": "msgs", "ws_connect": "connects", "ws_group": "deliveries",
         "http": "requests"}
QUICK = Params(conns=20, msgs=50, connects=100, connect_conc=20, receivers=20, group_msgs=50,
               group_idle=3.0, http_conns=20, http_duration=2.0)


# -- the arithmetic, kept pure so that it can be checked on fixed inputs ----------------------

def summarize(runs: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """Median of each summary figure over ``runs`` of one (stack, scenario)."""
    keys = [key for key in SUMMARY_KEYS if any(key in run for run in runs)]
    return medians([{key: run.get(key) for key in keys} for run in runs])


def compare(ours: dict[str, float | None],
            channels4: dict[str, float | None]) -> dict[str, float | None]:
    """Ours / channels4 for every figure both measured; None where channels4's is 0 or
    missing (a ratio to nothing says nothing)."""
    return {key: ratio(value, channels4.get(key) or 0) if value is not None else None
            for key, value in ours.items()}


def with_cpu(figures: dict[str, Any], before: dict[str, float],
             after: dict[str, float]) -> dict[str, Any]:
    """``figures`` plus the CPU each process used between the snapshots, and (stack + Redis)
    milliseconds per unit of work."""
    used = {name: round(after[name] - before[name], 3) for name in before}
    server = sum(value for name, value in used.items() if name != "redis")
    units = figures.get("units") or 0
    return {**figures, "cpu_by_process": used, "server_cpu_s": round(server, 3),
            "redis_cpu_s": used.get("redis", 0.0),
            "cpu_ms_per_unit": (round((server + used.get("redis", 0.0)) * 1000 / units, 4)
                                if units else None)}


def _cell(summary: dict[str, float | None], fmt: str, key: str) -> str:
    value = summary.get(key)
    return "–" if value is None else fmt.format(value)


def markdown(summaries: dict[tuple[str, str], dict[str, float | None]],
             params: Params, reps: int) -> str:
    """A table of the medians: one row per scenario, this package / Channels 4 / ratio."""
    labels = {
        "ws_echo": f"WebSocket echo, {params.conns} sockets × {params.msgs} msgs "
                   "(msgs/s, p99, CPU/msg, lost)",
        "ws_connect": f"WebSocket open+close, {params.connects} at ≤{params.connect_conc} "
                      "(connects/s, p99, CPU/connect, failed)",
        "ws_group": f"group fan-out, {params.receivers} receivers × {params.group_msgs} msgs "
                    "(deliveries/s, p99, CPU/delivery, lost)",
        "http": f"HTTP `GET /hello`, {params.http_conns} conns, {params.http_duration:g} s "
                "(req/s, p99, CPU/request, errors)",
    }
    loss_key = {"ws_echo": "lost", "ws_connect": "failed", "ws_group": "lost", "http": "errors"}
    lines = [f"Medians of {reps} alternated repetition(s); CPU is the stack's processes plus "
             "Redis, per unit of work.", "",
             "| scenario | this package | Channels 4 | ratio (rate, p99, CPU) |",
             "| --- | ---: | ---: | ---: |"]
    for scenario in SCENARIOS:
        if (scenario, "ours") not in summaries or (scenario, "channels4") not in summaries:
            continue
        cells = []
        for stack in STACKS:
            summary = summaries[scenario, stack]
            cells.append(", ".join([
                _cell(summary, "{:,.0f} /s", "rate"), _cell(summary, "{:.1f} ms", "p99_ms"),
                _cell(summary, "{:.3f} ms", "cpu_ms_per_unit"),
                _cell(summary, "{:.0f}", loss_key[scenario])]))
        ratios = compare(summaries[scenario, "ours"], summaries[scenario, "channels4"])
        ratio_cell = " / ".join(_cell(ratios, "{:.2f}×", key)
                                for key in ("rate", "p99_ms", "cpu_ms_per_unit"))
        lines.append(f"| {labels[scenario]} | {cells[0]} | {cells[1]} | {ratio_cell} |")
    return "\n".join(lines)


# -- the run ----------------------------------------------------------------------------------

def measure(stacks: dict[str, Stack], redis_pid: int, scenarios: Sequence[str], params: Params,
            reps: int) -> dict[tuple[str, str], list[dict[str, Any]]]:
    every_pid = {"redis": redis_pid}
    for stack in stacks.values():
        every_pid.update({f"{stack.name}:{index}": pid for index, pid in enumerate(stack.pids())})
    warm_up = Params(conns=5, msgs=20, connects=20, connect_conc=5, receivers=5, group_msgs=10,
                     group_idle=2.0, http_conns=5, http_duration=1.0)
    for stack in stacks.values():
        # Django and the consumers import lazily: the first requests would bill it to run 1.
        for scenario in scenarios:
            run_scenario(scenario, stack.ws_base, stack.port, warm_up)
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rep in range(1, reps + 1):
        for scenario in scenarios:
            for name in STACKS:
                stack = stacks[name]
                stack.check_alive()
                wait_idle(every_pid)
                pids = {key: pid for key, pid in every_pid.items()
                        if key == "redis" or key.startswith(f"{name}:")}
                before = cpu_snapshot(pids)
                figures = run_scenario(scenario, stack.ws_base, stack.port, params)
                run = with_cpu(figures, before, cpu_snapshot(pids))
                emit(kind="run", stack=name, scenario=scenario, rep=rep, **run)
                results.setdefault((scenario, name), []).append(run)
    return results


def report(results: dict[tuple[str, str], list[dict[str, Any]]], params: Params, reps: int,
           as_markdown: bool) -> None:
    summaries = {key: summarize(runs) for key, runs in results.items()}
    for (scenario, stack), summary in summaries.items():
        emit(kind="median", stack=stack, scenario=scenario, unit=UNITS[scenario],
             runs=len(results[scenario, stack]), **summary)
    for scenario in SCENARIOS:
        if (scenario, "ours") in summaries and (scenario, "channels4") in summaries:
            emit(kind="ratio", scenario=scenario, of="ours / channels4",
                 **compare(summaries[scenario, "ours"], summaries[scenario, "channels4"]))
    if as_markdown:
        print()
        print(markdown(summaries, params, reps))


def run(args: argparse.Namespace) -> None:
    from tests.redis_server import redis_binary, start_server

    params = QUICK if args.quick else Params(
        conns=args.conns, msgs=args.msgs, connects=args.connects,
        connect_conc=args.connect_conc, receivers=args.receivers, group_msgs=args.group_msgs,
        http_conns=args.http_conns, http_duration=args.http_duration)
    reps = 1 if args.quick and args.reps is None else (args.reps or 3)
    cache = Path(args.cache).expanduser()
    python = ensure_venv(cache)
    stacks: dict[str, Stack] = {}
    redis = start_server(redis_binary()[0])
    # The stacks' output, one file each, kept after the run: a stack that fails says why there.
    log_dir = cache / "logs"
    log_dir.mkdir(exist_ok=True)
    for old_log in log_dir.glob("*.log"):
        old_log.unlink()
    try:
        base = redis.url.rsplit("/", 1)[0]
        # Each stack on its own database: up at once, neither can take the other's messages.
        project = write_project(cache, f"{base}/0")
        stacks["ours"] = start_ours(f"{base}/1", "sbs:", args.workers, log_dir)
        stacks["channels4"] = start_channels4(python, project, log_dir)
        for stack in stacks.values():
            try:
                wait_ready(stack)
            except RuntimeError as exc:
                raise RuntimeError(f"{exc} (its output is in {log_dir})") from None
        emit(kind="config", date=time.strftime("%Y-%m-%d %H:%M:%S %Z"), cpus=os.cpu_count(),
             cpu_model=cpu_model(), reps=reps, workers=args.workers,
             loadavg=os.getloadavg()[0], params=vars(params), logs=str(log_dir))
        results = measure(stacks, redis.process.pid, args.scenario or SCENARIOS, params, reps)
    finally:
        for stack in stacks.values():
            stack.stop()
        redis.stop()
    report(results, params, reps, args.markdown)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def _stop_on_sigterm(signum: int, frame: object) -> None:
    # SystemExit unwinds through the ``finally`` blocks that stop every process.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> None:
    defaults = Params()
    parser = argparse.ArgumentParser(prog="python -m benchmarks.side_by_side",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 3; 1 with "
                        "--quick)")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS,
                        help="repeatable; default all")
    parser.add_argument("--quick", action="store_true",
                        help="small fixed counts (the count flags are ignored), one repetition "
                        "unless --reps: a smoke run of well under a minute")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    parser.add_argument("--cache", default=os.environ.get("CHANNELS_BENCH_CACHE",
                                                          str(DEFAULT_CACHE)),
                        help="where the Channels 4 venv and project live (default %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="runworker processes of ours")
    for name in ("conns", "msgs", "connects", "connect_conc", "receivers", "group_msgs",
                 "http_conns"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int,
                            default=getattr(defaults, name))
    parser.add_argument("--http-duration", type=float, default=defaults.http_duration)
    args = parser.parse_args(argv)
    for name in ("reps", "conns", "msgs", "connects", "connect_conc", "receivers",
                 "group_msgs", "http_conns", "workers"):
        value = getattr(args, name)
        if value is not None and not 1 <= value <= 100_000:
            parser.error(f"--{name.replace('_', '-')} must be between 1 and 100000")
    if not 0.5 <= args.http_duration <= 120:
        parser.error("--http-duration must be between 0.5 and 120 seconds")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    run(args)


if __name__ == "__main__":
    main()
