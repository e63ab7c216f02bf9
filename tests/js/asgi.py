"""What ``channels-server tests.js.asgi:channel_layer`` loads for the JavaScript client tests."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.js.settings")

from channels.asgi import get_channel_layer  # noqa: E402

channel_layer = get_channel_layer()
