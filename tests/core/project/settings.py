"""Settings for the process-level tests (runserver, runworker, channels-server subprocesses).

Driven by environment variables so each test gets its own database file and layer prefix:
``CORE_TEST_DB`` (sqlite file), ``CORE_TEST_REDIS_URL`` + ``CORE_TEST_PREFIX`` (Redis layer;
without them the in-memory layer is used), ``CORE_TEST_DEBUG``.
"""

import os

SECRET_KEY = "channels-core-tests-not-secret"
DEBUG = os.environ.get("CORE_TEST_DEBUG", "0") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "channels",
    "tests.core.project",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]

ROOT_URLCONF = "tests.core.project.urls"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("CORE_TEST_DB", ":memory:"),
    }
}

STATIC_URL = "/static/"
STATICFILES_DIRS = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")]

_ROUTING = "tests.core.project.routing.channel_routing"
if os.environ.get("CORE_TEST_REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.redis.RedisChannelLayer",
            "ROUTING": _ROUTING,
            "CONFIG": {
                "hosts": [os.environ["CORE_TEST_REDIS_URL"]],
                "prefix": os.environ.get("CORE_TEST_PREFIX", "core-test:"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.inmemory.InMemoryChannelLayer",
            "ROUTING": _ROUTING,
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

if os.environ.get("CORE_TEST_WATCHED_MODULE"):
    # The autoreload test edits this module and expects runserver to restart.
    import importlib

    importlib.import_module(os.environ["CORE_TEST_WATCHED_MODULE"])
LOGGING_CONFIG = None
