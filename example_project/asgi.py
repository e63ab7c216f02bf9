"""Entry point for ``channels-server example_project.asgi:channel_layer``."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

from channels.asgi import get_channel_layer  # noqa: E402

channel_layer = get_channel_layer()
