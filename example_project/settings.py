"""Settings for the example project.

With no environment set it runs on the in-memory layer (``manage.py runserver`` only). Set
``REDIS_URL`` (e.g. ``redis://127.0.0.1:6379/0``) to use the Redis layer, which is what
``channels-server example_project.asgi:channel_layer`` plus ``manage.py runworker`` need;
``CHANNELS_REDIS_PREFIX`` changes the layer's key prefix so several copies can share one Redis.
``EXAMPLE_DB`` moves the SQLite file; ``DJANGO_DEBUG=0`` turns debug off;
``DJANGO_ALLOWED_HOSTS`` (comma-separated) names the hosts it is served as;
``EXAMPLE_DEMO_USERS`` (``1`` by default with debug on) makes ``migrate`` create the demo accounts.
"""

import os

BASE_DIR = os.path.dirname(os.path.abspath(__file__))

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
# Also the check of the Origin of every WebSocket handshake (allowed_hosts_only).
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
USE_TZ = True
# Django exports TIME_ZONE to the process, so this also keeps the request log in UTC.
TIME_ZONE = "UTC"

# Demo accounts (alice, bob, admin; password "channels-demo") made by the accounts app's
# migration: for trying the example on your own machine, never for a reachable server.
EXAMPLE_DEMO_USERS = os.environ.get("EXAMPLE_DEMO_USERS", "1" if DEBUG else "0") == "1"
DEMO_PASSWORD = "channels-demo"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "example_project.accounts",
    "example_project.chat",
    "example_project.dashboard",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [os.path.join(BASE_DIR, "templates")],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DB", os.path.join(BASE_DIR, "db.sqlite3")),
        # channels-server's workers, the admin and `manage.py setitem` may write at once:
        # wait for SQLite's lock instead of failing with "database is locked".
        "OPTIONS": {"timeout": 20},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

STATIC_URL = "/static/"
STATICFILES_DIRS = [os.path.join(BASE_DIR, "static")]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
# Without it Django renders registration/logged_out.html, which the example does not ship.
LOGOUT_REDIRECT_URL = "/"

_ROUTING = "example_project.routing.channel_routing"
if os.environ.get("REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.redis.RedisChannelLayer",
            "CONFIG": {
                "hosts": [os.environ["REDIS_URL"]],
                "prefix": os.environ.get("CHANNELS_REDIS_PREFIX", "example:"),
            },
            "ROUTING": _ROUTING,
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.inmemory.InMemoryChannelLayer",
            "ROUTING": _ROUTING,
        }
    }

# Django's warnings and errors (404s, failed requests, bad hosts) on the console also with
# DEBUG off, once each: a root handler instead would print every Django line twice, and would
# stop the channels commands from adding their own handler to the ``channels`` loggers.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}
