"""What ``channels-server tests.reliability.project.asgi:channel_layer`` loads."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.reliability.project.settings")

from channels.asgi import get_channel_layer  # noqa: E402

channel_layer = get_channel_layer()
