"""Settings of the processes the reliability tests start (channels-server, runworker).

Driven by environment variables, so each test points its processes at Redis servers of its own:
``REL_REDIS_HOSTS`` (comma-separated URLs: several are shards), ``REL_PREFIX``,
``REL_ENCRYPTION_KEY`` (encryption at rest when set), ``REL_SOCKET_TIMEOUT`` (how soon a call
to a frozen Redis fails), ``REL_DB`` (sqlite file, for sessions and users),
``REL_CAPACITY`` (the layer's per-channel capacity, its default when unset) and
``REL_GATE_URL`` (the Redis the blocking consumers wait on; the first host by default).
"""

import os

SECRET_KEY = "channels-reliability-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
    "tests.reliability.project",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

ROOT_URLCONF = "tests.reliability.project.urls"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("REL_DB", ":memory:"),
    }
}

# Fast hashing: the tests log users in, they do not test password storage.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

_hosts = [host for host in os.environ.get("REL_REDIS_HOSTS", "").split(",") if host]
_config = {
    "hosts": _hosts or ["redis://127.0.0.1:6379/0"],
    "prefix": os.environ.get("REL_PREFIX", "reliability:"),
    "blocking_timeout": 1,
    "connection_kwargs": {"socket_timeout": float(os.environ.get("REL_SOCKET_TIMEOUT", "3"))},
}
if os.environ.get("REL_CAPACITY"):
    _config["capacity"] = int(os.environ["REL_CAPACITY"])
if os.environ.get("REL_ENCRYPTION_KEY"):
    _config["symmetric_encryption_keys"] = [os.environ["REL_ENCRYPTION_KEY"]]

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels.layers.redis.RedisChannelLayer",
        "ROUTING": "tests.reliability.project.routing.channel_routing",
        "CONFIG": _config,
    }
}

GATE_URL = os.environ.get("REL_GATE_URL") or _config["hosts"][0]

DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
