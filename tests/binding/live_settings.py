"""Settings of the live binding project (channels-server, runworker and management commands
as separate processes), driven by the environment like tests/core/project/settings.py:
``CORE_TEST_DB`` (a SQLite file all processes share), ``CORE_TEST_REDIS_URL`` and
``CORE_TEST_PREFIX`` (the Redis layer; without them the in-memory layer)."""

import os

SECRET_KEY = "channels-binding-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "tests.binding.bindapp",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.binding.bindapp.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": [
            "django.template.context_processors.request",
            "django.contrib.auth.context_processors.auth",
            "django.contrib.messages.context_processors.messages",
        ]},
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("CORE_TEST_DB", ":memory:"),
        # Several processes write to one file; wait for a lock rather than fail.
        "OPTIONS": {"timeout": 20},
    }
}

STATIC_URL = "/static/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

_ROUTING = "tests.binding.bindapp.routing.channel_routing"
if os.environ.get("CORE_TEST_REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.redis.RedisChannelLayer",
            "ROUTING": _ROUTING,
            "CONFIG": {
                "hosts": [os.environ["CORE_TEST_REDIS_URL"]],
                "prefix": os.environ.get("CORE_TEST_PREFIX", "binding-test:"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.inmemory.InMemoryChannelLayer",
                    "ROUTING": _ROUTING},
    }
