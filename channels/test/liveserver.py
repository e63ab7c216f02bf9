"""``ChannelLiveServerTestCase``: a real interface server and a real worker, each in its own
process, on a free port, for tests that drive the site like a browser (requests, websockets,
Selenium).

Both processes build their layer from ``TEST_CONFIG`` (so the suite never touches the
production Redis keys) and use the test database, which therefore has to be one other processes
can open: in-memory SQLite is refused with an explanation.

Run as ``python -m channels.test.liveserver server|worker ...`` it is the child side.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import subprocess
import sys
import time
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.test import TransactionTestCase

from channels import DEFAULT_CHANNEL_LAYER

#: Environment variable through which the test database names reach the children.
DATABASES_ENV = "CHANNELS_LIVE_DATABASES"
#: Environment variable naming the host the children must accept requests for.
ALLOWED_HOST_ENV = "CHANNELS_LIVE_ALLOWED_HOST"


class LiveServerProcessError(RuntimeError):
    """A live server child process failed to start (its output is in the test's log)."""


class ChannelLiveServerTestCase(TransactionTestCase):
    """Starts ``channels-server`` and a worker before each test, stops them after it.

    ``live_server_url`` / ``live_server_ws_url`` point at the server. The test's own
    ``channel_layers[channel_alias]`` is the ``TEST_CONFIG`` layer too, so ``Group(...).send``
    from the test reaches live sockets.
    """

    host = "127.0.0.1"
    channel_alias = DEFAULT_CHANNEL_LAYER
    worker_threads = 1
    serve_static = True
    #: Settings module of the child processes (default: the test run's own).
    settings_module: str | None = None
    #: Give the children the test databases (off when the children's settings bring their own).
    share_test_databases = True
    #: Run ``migrate`` in the worker process first (for children with a database of their own).
    migrate = False
    startup_timeout = 30.0
    shutdown_timeout = 10.0

    @property
    def live_server_url(self) -> str:
        return f"http://{self.host}:{self._port}"

    @property
    def live_server_ws_url(self) -> str:
        return f"ws://{self.host}:{self._port}"

    # -- lifecycle ------------------------------------------------------------------------------

    def _setup_and_call(self, result: Any, debug: bool = False) -> None:
        # Per test, around Django's own setup (whose _pre_setup is class-level since 5.x).
        test_method = getattr(self, self._testMethodName)
        if getattr(type(self), "__unittest_skip__", False) or getattr(
                test_method, "__unittest_skip__", False):
            super()._setup_and_call(result, debug)
            return
        self._start_live_server()
        try:
            super()._setup_and_call(result, debug)
        finally:
            self._stop_live_server()

    def _start_live_server(self) -> None:
        self._processes: list[subprocess.Popen] = []
        self._old_layer: Any = None
        self._swapped_layer = False
        try:
            env = self._child_environment()
            self._swap_parent_layer()
            worker_args = ["--threads", str(self.worker_threads)]
            if self.serve_static:
                worker_args.append("--serve-static")
            if self.migrate:
                worker_args.append("--migrate")
            # The worker first: it flushes the test layer, which must happen before any request.
            self._spawn("worker", worker_args, env)
            port = self._spawn("server", ["--host", self.host], env)
            self._port = int(port)
        except BaseException:
            self._stop_live_server()
            raise

    def _stop_live_server(self) -> None:
        try:
            self._stop_processes()
        finally:
            self._restore_parent_layer()

    # -- helpers ----------------------------------------------------------------------------------

    def _child_environment(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.settings_module:
            env["DJANGO_SETTINGS_MODULE"] = self.settings_module
        if self.share_test_databases:
            names = {}
            for alias in connections:
                settings_dict = connections[alias].settings_dict
                name = str(settings_dict["NAME"])
                if connections[alias].vendor == "sqlite" and (
                    name == ":memory:" or "mode=memory" in name
                ):
                    raise ImproperlyConfigured(
                        "ChannelLiveServerTestCase runs the worker in another process, which "
                        f"cannot open the in-memory SQLite test database of {alias!r}. Give it "
                        "a file: DATABASES[...]['TEST']['NAME'] = 'test_db.sqlite3'."
                    )
                names[alias] = name
            env[DATABASES_ENV] = json.dumps(names)
        else:
            env.pop(DATABASES_ENV, None)
        # Django's live server test case lets its own host in (ALLOWED_HOSTS), and so did
        # Channels 1.1's forked children; these are fresh processes, so they are told.
        env[ALLOWED_HOST_ENV] = self.host
        # Children import the project the way this process did.
        env["PYTHONPATH"] = os.pathsep.join(p for p in [os.getcwd(), *sys.path] if p)
        return env

    def _swap_parent_layer(self) -> None:
        from channels.asgi import channel_layers

        config = channel_layers.configs.get(self.channel_alias) or {}
        if "TEST_CONFIG" not in config:
            if self.settings_module:
                return  # the children's settings differ; this process has no layer to share
            raise ImproperlyConfigured(
                f"ChannelLiveServerTestCase needs CHANNEL_LAYERS[{self.channel_alias!r}]"
                "['TEST_CONFIG'] (a cross-process layer such as Redis, with test-only keys)"
            )
        self._old_layer = channel_layers.set(
            self.channel_alias, channel_layers.make_test_backend(self.channel_alias))
        self._swapped_layer = True

    def _restore_parent_layer(self) -> None:
        if not self._swapped_layer:
            return
        from channels.asgi import channel_layers

        test_layer = channel_layers.set(self.channel_alias, self._old_layer)
        self._swapped_layer = False
        close = getattr(getattr(test_layer, "channel_layer", None), "close", None)
        if close is not None:
            close()

    def _spawn(self, role: str, extra_args: list[str], env: dict[str, str]) -> str:
        """Start a child and wait for the line it writes on its ready pipe (an event, not a
        poll); returns that line."""
        read_fd, write_fd = os.pipe()
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "channels.test.liveserver", role,
                 "--alias", self.channel_alias, "--ready-fd", str(write_fd), *extra_args],
                env=env, pass_fds=[write_fd],
            )
        except BaseException:
            os.close(read_fd)
            os.close(write_fd)
            raise
        os.close(write_fd)
        self._processes.append(process)
        try:
            deadline = time.monotonic() + self.startup_timeout
            received = b""
            while not received.endswith(b"\n"):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LiveServerProcessError(
                        f"live {role} did not start within {self.startup_timeout}s")
                readable, _, _ = select.select([read_fd], [], [], remaining)
                if not readable:
                    continue
                chunk = os.read(read_fd, 256)
                if not chunk:
                    raise LiveServerProcessError(
                        f"live {role} exited during start-up (code {process.wait(5)}); see its "
                        "output above")
                received += chunk
        finally:
            os.close(read_fd)
        return received.decode().strip()

    def _stop_processes(self) -> None:
        for process in self._processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self._processes:
            try:
                process.wait(self.shutdown_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self._processes = []


# ------------------------------------------------------------------------------------------------
# Child side
# ------------------------------------------------------------------------------------------------


def _setup_django() -> None:
    import django
    from django.conf import settings

    names = json.loads(os.environ.get(DATABASES_ENV) or "{}")
    for alias, name in names.items():
        # The test run renamed these (test_...); point the copy of the settings at them.
        settings.DATABASES[alias]["NAME"] = name
        settings.DATABASES[alias].setdefault("TEST", {})["NAME"] = name
    allowed_host = os.environ.get(ALLOWED_HOST_ENV)
    if allowed_host and allowed_host not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, allowed_host]
    django.setup()


def _signal_ready(ready_fd: int, line: str) -> None:
    os.write(ready_fd, (line + "\n").encode())
    os.close(ready_fd)


def _run_worker(args: argparse.Namespace) -> None:
    from django.apps import apps
    from django.core.management import call_command

    from channels.asgi import channel_layers
    from channels.worker import Worker, WorkerGroup

    if args.migrate:
        call_command("migrate", interactive=False, verbosity=0)
    wrapper = channel_layers.make_test_backend(args.alias)
    channel_layers.set(args.alias, wrapper)
    flush = getattr(wrapper.channel_layer, "flush", None)
    if flush is not None:
        flush()
    http_consumer = None
    if args.serve_static and apps.is_installed("django.contrib.staticfiles"):
        from channels.staticfiles import StaticFilesConsumer

        http_consumer = StaticFilesConsumer()
    wrapper.router.check_default(http_consumer=http_consumer)
    if args.threads > 1:
        worker: Worker = WorkerGroup(wrapper, n_threads=args.threads)
    else:
        worker = Worker(wrapper)
    worker.ready()
    _signal_ready(args.ready_fd, "ready")
    worker.run()


def _run_server(args: argparse.Namespace) -> None:
    from channels.asgi import channel_layers
    from channels.server import Server

    layer = channel_layers.make_test_backend(args.alias).channel_layer

    def ready(addresses: list[tuple[Any, Any]]) -> None:
        _signal_ready(args.ready_fd, str(addresses[0][1]))

    Server(channel_layer=layer, endpoints=[f"tcp:port=0:interface={args.host}"],
           signal_handlers=True, ready_callback=ready, verbosity=0).run()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m channels.test.liveserver")
    parser.add_argument("role", choices=["server", "worker"])
    parser.add_argument("--alias", default=DEFAULT_CHANNEL_LAYER)
    parser.add_argument("--ready-fd", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--serve-static", action="store_true")
    parser.add_argument("--migrate", action="store_true")
    args = parser.parse_args(argv)
    _setup_django()
    if args.role == "worker":
        _run_worker(args)
    else:
        _run_server(args)


if __name__ == "__main__":
    main()
