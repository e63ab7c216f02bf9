"""The process tests' project (tests/core/project) on ``SyncRedisLayer``: a layer with only
the synchronous ASGI 1 API, shared by ``channels-server`` and ``runworker`` through Redis."""

import os

from tests.core.project.settings import *  # noqa: F403
from tests.core.project.settings import _ROUTING

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "tests.compat.sync_only_layers.SyncRedisLayer",
        "ROUTING": _ROUTING,
        "CONFIG": {
            "hosts": [os.environ["CORE_TEST_REDIS_URL"]],
            "prefix": os.environ["CORE_TEST_PREFIX"],
        },
    }
}
