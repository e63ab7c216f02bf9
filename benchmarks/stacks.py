"""The two stacks the side-by-side benchmark starts: this package serving the example project,
and a Channels 4 project in a venv of its own, plus the CPU time each one's processes used.

The Channels 4 venv is made once under a cache folder and reused; its project is rendered from
the templates in ``benchmarks/peers/channels4/`` on every run, because it names the run's
private Redis.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import venv
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from benchmarks.harness import ROOT, free_port, stop, wait_listening

logger = logging.getLogger("channels.benchmarks.stacks")

TEMPLATES = Path(__file__).resolve().parent / "peers" / "channels4"
DEFAULT_CACHE = Path.home() / ".cache" / "channels-classic-bench" / "channels4"
# The project's files, from the template of the same name plus ``.tmpl``.
PROJECT_FILES = ("settings.py", "asgi.py", "consumers.py", "urls.py")
GROUP = "bench"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- the Channels 4 venv and project ----------------------------------------------------------

def render_project(redis_url: str) -> dict[str, str]:
    """File name → source of the ``bench4`` package, for a layer on ``redis_url``."""
    values = {"redis_url": repr(redis_url), "group": repr(GROUP)}
    sources = {"__init__.py": ""}
    for name in PROJECT_FILES:
        template = Template((TEMPLATES / f"{name}.tmpl").read_text())
        # substitute, not safe_substitute: a placeholder left over is a broken template.
        sources[name] = template.substitute(values)
    return sources


def ensure_venv(cache: Path) -> Path:
    """The cached venv's Python, made and filled with the pinned requirements if it is missing
    or was made from other pins (the pins are copied beside it when the install succeeds)."""
    requirements = (TEMPLATES / "requirements.txt").read_text()
    python = cache / "venv" / "bin" / "python"
    installed = cache / "requirements.installed.txt"
    if python.exists() and installed.exists() and installed.read_text() == requirements:
        return python
    logger.warning("creating the Channels 4 venv in %s (once; takes a minute)", cache)
    cache.mkdir(parents=True, exist_ok=True)
    venv.create(cache / "venv", with_pip=True, clear=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r",
                    str(TEMPLATES / "requirements.txt")], check=True, timeout=900,
                   stdout=sys.stderr)
    installed.write_text(requirements)
    return python


def write_project(cache: Path, redis_url: str) -> Path:
    """The rendered project under ``cache/project``, its directory returned (daphne's cwd)."""
    package = cache / "project" / "bench4"
    package.mkdir(parents=True, exist_ok=True)
    for name, source in render_project(redis_url).items():
        (package / name).write_text(source)
    return package.parent


# -- running stacks ---------------------------------------------------------------------------

@dataclass
class Stack:
    """A started stack: its processes (stopped by ``stop``) and where to reach it."""

    name: str
    port: int
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def check_alive(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(f"{self.name}: {process.args[:3]} exited with code "
                                   f"{process.returncode}")

    def stop(self) -> None:
        stop(self.processes)


def _spawn(args: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    # Output goes to a log file, not the terminal: it would interleave with the JSON lines.
    with open(log, "ab") as output:
        return subprocess.Popen(args, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)


def start_channels4(python: Path, project: Path, log_dir: Path) -> Stack:
    stack = Stack("channels4", free_port())
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench4.settings", "PYTHONUNBUFFERED": "1"}
    daphne = python.parent / "daphne"
    stack.processes.append(_spawn(
        [str(daphne), "-v", "0", "-b", "127.0.0.1", "-p", str(stack.port),
         "bench4.asgi:application"], project, env, log_dir / "channels4.log"))
    return stack


def start_ours(redis_url: str, prefix: str, workers: int, log_dir: Path) -> Stack:
    """``channels-server`` and ``workers`` × ``manage.py runworker`` of the example project,
    whose ``probes`` module routes the same three endpoints as the Channels 4 project."""
    stack = Stack("ours", free_port())
    env = {**os.environ, "REDIS_URL": redis_url, "CHANNELS_REDIS_PREFIX": prefix,
           "DJANGO_DEBUG": "0", "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
           "DJANGO_SETTINGS_MODULE": "example_project.settings", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": str(ROOT)}
    bin_dir = Path(sys.executable).parent
    log = log_dir / "ours.log"
    stack.processes.append(_spawn(
        [str(bin_dir / "channels-server"), "-v", "0", "-b", "127.0.0.1", "-p", str(stack.port),
         "example_project.asgi:channel_layer"], ROOT, env, log))
    for _ in range(workers):
        stack.processes.append(_spawn(
            [sys.executable, "example_project/manage.py", "runworker", "-v", "0"], ROOT, env,
            log))
    return stack


def wait_ready(stack: Stack, timeout: float = 60) -> None:
    """Until the stack answers ``GET /hello`` with 200 and echoes a frame on ``/ws/echo/``:
    a listening port alone does not mean the workers are up."""
    import asyncio

    from benchmarks.scenarios import probe

    deadline = time.monotonic() + timeout
    wait_listening(stack.port, timeout)
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        stack.check_alive()
        try:
            asyncio.run(probe(stack.ws_base, stack.port))
            return
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last_error = exc
            time.sleep(0.3)
    raise RuntimeError(f"{stack.name} not ready within {timeout}s: {last_error!r}")


# -- CPU time ---------------------------------------------------------------------------------

def _parent_map() -> dict[int, int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = _stat_fields(int(entry))[1]
            except (OSError, IndexError, ValueError):
                continue  # gone between listdir and read
    return parents


def _stat_fields(pid: int) -> list[int]:
    """``/proc/<pid>/stat`` after the command name (which may hold spaces), fields from
    ``state`` on; ints where they parse, 0 for ``state`` itself."""
    text = Path(f"/proc/{pid}/stat").read_text()
    rest = text[text.rindex(")") + 2:].split()
    return [0] + [int(value) for value in rest[1:]]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its live descendants; 0 once it is gone."""
    parents = _parent_map()
    family, todo = [], [pid]
    while todo:
        current = todo.pop()
        family.append(current)
        todo += [child for child, parent in parents.items() if parent == current]
    total = 0
    for member in family:
        try:
            fields = _stat_fields(member)
        except (OSError, ValueError):
            continue
        # utime and stime are fields 14 and 15 of stat(5); ``fields`` starts at field 3.
        total += fields[11] + fields[12]
    return total / CLOCK_TICKS


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


def wait_idle(pids: dict[str, int], busy_fraction: float = 0.05, timeout: float = 10) -> None:
    """Until the processes together use under ``busy_fraction`` of a CPU over 0.5 s (the
    previous run's leftover work is done), or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    before = sum(cpu_snapshot(pids).values())
    while time.monotonic() < deadline:
        time.sleep(0.5)
        after = sum(cpu_snapshot(pids).values())
        if after - before < busy_fraction * 0.5:
            return
        before = after
