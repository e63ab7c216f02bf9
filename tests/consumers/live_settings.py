"""Settings of the live server's child processes in tests/consumers: the suite's settings plus
what the test passes in ``CHANNELS_LIVE_TEST_SETTINGS`` (its Redis prefix, a database file)."""

import json
import os

from tests.settings import *  # noqa: F403

globals().update(json.loads(os.environ.get("CHANNELS_LIVE_TEST_SETTINGS") or "{}"))
