"""Shared fixtures: a real Redis for the whole session, unique key prefixes per test."""

from __future__ import annotations

import uuid

import pytest

from tests import process_output
from tests.redis_server import RedisServer, RedisUnavailable, obtain_redis


@pytest.fixture(scope="session")
def redis_server() -> RedisServer:
    """A Redis that answers, found or started as described in tests/redis_server.py."""
    try:
        server = obtain_redis()
    except RedisUnavailable as exc:
        pytest.fail(f"tests need a Redis server and none could be had: {exc}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def unique_prefix() -> str:
    """A key prefix no other test (or xdist worker) shares, so flush() never touches theirs."""
    return f"test-{uuid.uuid4().hex[:12]}:"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test's report carries the output of the processes it was talking to."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("setup", "call"):
        for title, text in process_output.sections():
            report.sections.append((title, text))


@pytest.fixture(autouse=True)
def _forget_exited_processes():
    yield
    process_output.forget_exited()
