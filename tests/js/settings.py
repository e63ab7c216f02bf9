"""Settings of the channels-server and runworker processes the JavaScript client tests talk to.

The layer is Redis at ``JS_TEST_REDIS_URL`` under the test's own ``JS_TEST_PREFIX``; the routing
is ``tests.js.routing``. DEBUG and no http.request route make the worker serve the static files
(as under runserver), so the bridge's own files can be fetched from the live server.
"""

import os

SECRET_KEY = "channels-js-tests-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "channels",
]

ROOT_URLCONF = "tests.js.routing"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
STATIC_URL = "/static/"

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels.layers.redis.RedisChannelLayer",
        "ROUTING": "tests.js.routing.channel_routing",
        "CONFIG": {
            "hosts": [os.environ.get("JS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")],
            "prefix": os.environ.get("JS_TEST_PREFIX", "js-test:"),
        },
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGGING_CONFIG = None
