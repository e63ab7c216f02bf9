"""Fixtures of the consumer tests: a Redis-backed layer for live server tests."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def live_chat(request, settings, redis_url, unique_prefix, monkeypatch, tmp_path):
    """Settings shared by the test process and its live server children: the chat routing on a
    Redis layer under this test's own prefix, and a database file the worker migrates."""
    _live_settings("tests.consumers.chat.channel_routing", settings, redis_url, unique_prefix,
                   monkeypatch, tmp_path)


@pytest.fixture
def live_no_http_route(request, settings, redis_url, unique_prefix, monkeypatch, tmp_path):
    """The same with a routing that leaves http.request to the defaults (views, static files)."""
    _live_settings("tests.testapp.routing.channel_routing", settings, redis_url, unique_prefix,
                   monkeypatch, tmp_path)


def _live_settings(routing, settings, redis_url, unique_prefix, monkeypatch, tmp_path):
    layer_config = {"hosts": [redis_url], "prefix": unique_prefix}
    overrides = {
        "CHANNEL_LAYERS": {"default": {
            "BACKEND": "channels.layers.redis.RedisChannelLayer",
            "CONFIG": layer_config,
            "TEST_CONFIG": layer_config,
            "ROUTING": routing,
        }},
        "ROOT_URLCONF": "tests.consumers.chat",
        "DATABASES": {"default": {"ENGINE": "django.db.backends.sqlite3",
                                  "NAME": str(tmp_path / "live.sqlite3")}},
        "PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"],
    }
    monkeypatch.setenv("CHANNELS_LIVE_TEST_SETTINGS", json.dumps(overrides))
    settings.CHANNEL_LAYERS = overrides["CHANNEL_LAYERS"]
    settings.ROOT_URLCONF = overrides["ROOT_URLCONF"]
