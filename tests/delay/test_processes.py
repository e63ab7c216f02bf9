"""``manage.py rundelay`` as real processes on a real Redis and a shared SQLite file: timing,
restarts, crashes, two servers at once, a database left by Channels 1.1."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from channels.asgi import ChannelLayerWrapper
from channels.layers.redis import RedisChannelLayer
from tests.core.processes import ROOT, Process, django_command, migrate, project_env

WAIT = 15
TABLE = '"channels.delay_delayedmessage"'
STOPPED = (r"Delay server stopped: (\d+) messages stored, (\d+) sent, (\d+) left to another "
           r"process")


WAL = pytest.mark.parametrize("delay_env", ["wal"], indirect=True)


@pytest.fixture
def delay_env(request, tmp_path, redis_url, unique_prefix):
    """Environment of rundelay processes (their own SQLite file, their own Redis prefix) and
    the same layer for the test to talk to. Parametrized ``"wal"``: SQLite in WAL mode."""
    db_path = tmp_path / "db.sqlite3"
    wal = getattr(request, "param", "rollback-journal") == "wal"
    env = project_env(db_path, redis_url=redis_url, prefix=unique_prefix,
                      DJANGO_SETTINGS_MODULE="tests.delay.settings",
                      DELAY_TEST_SQLITE_WAL="1" if wal else "0")
    layer = RedisChannelLayer(hosts=[redis_url], prefix=unique_prefix)
    try:
        yield env, db_path, ChannelLayerWrapper(layer, "default", [])
    finally:
        layer.flush()
        layer.close()


def rundelay(env: dict[str, str], *args: str) -> Process:
    process = Process(django_command("rundelay", *args), env)
    process.wait_for(r"Listening on asgi\.delay", timeout=WAIT)
    return process


def stop(process: Process, signo: int = signal.SIGTERM) -> tuple[int, int, int]:
    """SIGTERM (or ``signo``); it must exit 0. Returns (stored, sent, left to another
    process)."""
    process.signal(signo)
    assert process.wait(WAIT) == 0, process.output()
    stored, sent, taken = process.wait_for(STOPPED).groups()
    return int(stored), int(sent), int(taken)


def receive(layer, channel: str, count: int, timeout: float = WAIT) -> list[tuple[dict, float]]:
    """``count`` messages from ``channel`` with the wall-clock time each arrived."""
    received = []
    deadline = time.monotonic() + timeout
    while len(received) < count:
        assert time.monotonic() < deadline, f"only {len(received)}/{count} arrived"
        name, content = layer.receive([channel], block=True)
        if name is not None:
            received.append((content, time.time()))
    return received


def assert_nothing_more(layer, channel: str, db_path: Path) -> None:
    """No row left and no extra message: the layer's blocking receive waits 1 s for one.

    A row's DELETE commits just after its message went out, hence the wait for the table.
    """
    wait_for_rows(db_path, 0, timeout=5)
    assert layer.receive([channel], block=True) == (None, None)


def count_rows(db_path: Path) -> int:
    with sqlite3.connect(db_path, timeout=10) as db:
        return db.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()[0]


def insert_rows(db_path: Path, rows: list[tuple[datetime, str, str]]) -> None:
    """Rows written straight into the table, as another delay server (or 1.1) would have."""
    with sqlite3.connect(db_path, timeout=10) as db:
        db.executemany(
            f"INSERT INTO {TABLE} (due_date, channel_name, content) VALUES (?, ?, ?)",
            # Django's SQLite format for an aware datetime: UTC, space-separated.
            [(due.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"), channel, content)
             for due, channel, content in rows])


def wait_for_rows(db_path: Path, count: int, timeout: float = WAIT) -> None:
    """The table is the only witness that messages were stored: look until it says so."""
    deadline = time.monotonic() + timeout
    while count_rows(db_path) != count:
        assert time.monotonic() < deadline, f"{count_rows(db_path)}/{count} rows stored"
        time.sleep(0.02)


def send_delayed(layer, channel: str, delays: list[int]) -> dict[int, float]:
    """One message per delay, content ``{"i": index}``; when each is due (wall clock)."""
    due = {}
    for index, delay in enumerate(delays):
        sent_at = time.time()
        layer.send("asgi.delay", {"channel": channel, "delay": delay, "content": {"i": index}})
        due[index] = sent_at + delay / 1000
    return due


@WAL
def test_an_idle_rundelay_sends_each_message_within_50ms_of_its_due_time(delay_env):
    """Measured from the sender's side: due = when the test sent it + its delay.

    On SQLite in WAL mode, as recommended: with the default rollback journal, a row due while
    the previous one's commit waits for its fsync waits too (docs/delay.md).
    """
    env, db_path, layer = delay_env
    migrate(env)
    server = rundelay(env)
    try:
        # One message through first: what a process does once (loading the layer's scripts,
        # compiling its first queries) is not what this test measures.
        send_delayed(layer, "dest.warm-up", [0])
        receive(layer, "dest.warm-up", 1)
        delays = [100 + 900 * index // 19 for index in range(20)]  # 100 ... 1000 ms
        due = send_delayed(layer, "dest.timing", delays)
        lateness = {}
        for content, arrived in receive(layer, "dest.timing", len(delays)):
            lateness[content["i"]] = (arrived - due[content["i"]]) * 1000
        assert sorted(lateness) == list(range(len(delays)))
        print(f"\nlateness over {len(delays)} messages: min {min(lateness.values()):.1f} ms, "
              f"max {max(lateness.values()):.1f} ms")
        assert all(0 <= late <= 50 for late in lateness.values()), lateness
        assert_nothing_more(layer, "dest.timing", db_path)
        assert stop(server)[:2] == (21, 21)
    finally:
        server.kill()


def test_a_row_another_server_stored_is_found_within_the_sleep_bound(delay_env):
    env, db_path, layer = delay_env
    migrate(env)
    server = rundelay(env, "--sleep", "0.3")
    try:
        now = datetime.now(UTC)
        insert_rows(db_path, [(now, "dest.found", '{"i": 0}'),
                              (now + timedelta(seconds=0.8), "dest.found", '{"i": 1}')])
        (first, first_at), (second, second_at) = receive(layer, "dest.found", 2)
        assert (first, second) == ({"i": 0}, {"i": 1})
        # Already due: found at the next look, at most --sleep later.
        assert first_at - now.timestamp() <= 0.3 + 0.05
        # Due later: found before its time, so sent on time.
        assert 0 <= second_at - (now.timestamp() + 0.8) <= 0.05
        assert_nothing_more(layer, "dest.found", db_path)
    finally:
        server.kill()


def test_a_restart_mid_run_loses_and_repeats_nothing(delay_env):
    env, db_path, layer = delay_env
    migrate(env)
    first = rundelay(env)
    second = None
    try:
        count = 100
        due = send_delayed(layer, "dest.restart", [20 * index for index in range(count)])
        arrived = receive(layer, "dest.restart", 30)
        stored, sent_before, _ = stop(first)  # mid-run: 70 rows still waiting
        assert stored == count and sent_before >= 30
        assert count_rows(db_path) == count - sent_before
        second = rundelay(env)
        arrived += receive(layer, "dest.restart", count - len(arrived))
        indexes = [content["i"] for content, _ in arrived]
        assert sorted(indexes) == list(range(count))  # each exactly once
        assert all(at >= due[content["i"]] for content, at in arrived)  # none early
        assert_nothing_more(layer, "dest.restart", db_path)
        assert stop(second)[1] == count - sent_before
    finally:
        first.kill()
        if second is not None:
            second.kill()


def test_rows_survive_a_killed_rundelay(delay_env):
    env, db_path, layer = delay_env
    migrate(env)
    first = rundelay(env)
    second = None
    try:
        due = send_delayed(layer, "dest.crash", [2000] * 50)
        wait_for_rows(db_path, 50)
        first.popen.kill()  # SIGKILL: no chance to clean up
        first.wait(WAIT)
        second = rundelay(env)
        arrived = receive(layer, "dest.crash", 50)
        assert sorted(content["i"] for content, _ in arrived) == list(range(50))
        assert all(at >= due[content["i"]] for content, at in arrived)
        assert_nothing_more(layer, "dest.crash", db_path)
    finally:
        first.kill()
        if second is not None:
            second.kill()


@pytest.mark.parametrize("delay_env", ["rollback-journal", "wal"], indirect=True)
def test_two_rundelay_processes_send_each_row_exactly_once(delay_env):
    """Both hold the same due rows at the same moment and race for every one of them."""
    env, db_path, layer = delay_env
    migrate(env)
    servers = [rundelay(env, "--sleep", "0.2") for _ in range(2)]
    try:
        due_at = datetime.now(UTC) + timedelta(seconds=1)
        direct = 300
        insert_rows(db_path, [(due_at, "dest.race", f'{{"i": {index}}}')
                              for index in range(direct)])
        # These are split between the two by the layer; each wakes at due_at for its own.
        via_layer = 100
        delay = round((due_at - datetime.now(UTC)).total_seconds() * 1000)
        for index in range(direct, direct + via_layer):
            layer.send("asgi.delay", {"channel": "dest.race", "delay": delay,
                                      "content": {"i": index}})
        total = direct + via_layer
        arrived = receive(layer, "dest.race", total, timeout=25)
        assert sorted(content["i"] for content, _ in arrived) == list(range(total))
        assert_nothing_more(layer, "dest.race", db_path)
        results = [stop(server) for server in servers]
        print(f"\n(stored, sent, left to the other) per process: {results}")
        assert sum(stored for stored, _, _ in results) == via_layer
        assert sum(sent for _, sent, _ in results) == total
        # They did race: some rows were found already taken by the other.
        assert sum(taken for _, _, taken in results) > 0
    finally:
        for server in servers:
            server.kill()


@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_an_idle_rundelay_quickly_with_exit_0(delay_env, signo):
    env, _, _ = delay_env
    migrate(env)
    server = rundelay(env)
    try:
        began = time.monotonic()
        stop(server, signo)
        assert time.monotonic() - began < 5
        assert "Traceback" not in server.output()
    finally:
        server.kill()


def test_migrate_adopts_the_table_and_rows_of_channels_1(delay_env):
    """A database upgraded from Channels 1.1 already has the table (and rows still waiting):
    ``migrate`` must work unchanged and the rows must still be sent."""
    env, db_path, layer = delay_env
    with sqlite3.connect(db_path) as db:
        # What Channels 1.1's migration created on SQLite.
        db.execute(f'CREATE TABLE {TABLE} ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, '
                   '"due_date" datetime NOT NULL, "channel_name" varchar(512) NOT NULL, '
                   '"content" text NOT NULL)')
        db.execute(f'CREATE INDEX "channels.delay_delayedmessage_due_date_idx" ON {TABLE} '
                   '("due_date")')
    insert_rows(db_path, [(datetime.now(UTC), "dest.old", '{"from": "1.1"}')])
    migrate(env)
    with sqlite3.connect(db_path) as db:
        applied = db.execute("SELECT name FROM django_migrations WHERE app = 'channels_delay'")
        assert [name for (name,) in applied] == ["0001_initial"]
    server = rundelay(env)
    try:
        [(content, _)] = receive(layer, "dest.old", 1)
        assert content == {"from": "1.1"}
        assert_nothing_more(layer, "dest.old", db_path)
    finally:
        server.kill()


def test_migrate_creates_the_table_on_a_new_database_and_can_undo_it(delay_env):
    env, db_path, _ = delay_env
    migrate(env)
    assert count_rows(db_path) == 0
    subprocess.run([sys.executable, "-m", "django", "migrate", "channels_delay", "zero",
                    "-v", "0"], env=env, cwd=ROOT, check=True, timeout=60)
    with sqlite3.connect(db_path) as db, pytest.raises(sqlite3.OperationalError,
                                                       match=re.escape("no such table")):
        db.execute(f"SELECT COUNT(*) FROM {TABLE}")


def test_messages_the_database_refused_go_back_to_asgi_delay_on_exit(delay_env):
    """The database stays locked: received messages are held, the server stays up, and on
    SIGTERM they are handed back to asgi.delay (with what is left of their delay)."""
    env, db_path, layer = delay_env
    migrate(env)
    server = rundelay(dict(env, DELAY_TEST_SQLITE_TIMEOUT="0.5"))
    blocker = sqlite3.connect(db_path, isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")  # no other connection may read or write now
        layer.send("asgi.delay", {"channel": "dest.held", "delay": 20_000,
                                  "content": {"kept": True}})
        # Its connection waits 0.5 s for the lock, then the step fails and is retried.
        server.wait_for(r"Delay server step failed; retrying in", timeout=WAIT)
        assert server.popen.poll() is None
        server.signal()
        assert server.wait(WAIT) == 0, server.output()
        assert "Could not store 1 received message(s)" in server.output()
        channel, message = layer.receive(["asgi.delay"])
        assert channel == "asgi.delay"
        assert message["channel"] == "dest.held" and message["content"] == {"kept": True}
        assert 0 < message["delay"] < 20_000
    finally:
        blocker.close()
        server.kill()
