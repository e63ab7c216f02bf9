"""The reliability project on ``RedisSentinelChannelLayer``: ``REL_SENTINELS`` lists the
sentinels (``host:port,host:port``) and ``REL_SENTINEL_SERVICE`` names the master they watch.
Everything else is ``settings``."""

import os

from tests.reliability.project.settings import *  # noqa: F403
from tests.reliability.project.settings import _config

_sentinels = [(host, int(port)) for host, port in
              (entry.rsplit(":", 1) for entry in os.environ["REL_SENTINELS"].split(","))]
_sentinel_config = {key: value for key, value in _config.items() if key != "hosts"}
_sentinel_config.update({"hosts": _sentinels,
                         "services": [os.environ["REL_SENTINEL_SERVICE"]],
                         "sentinel_kwargs": {"socket_timeout": 1, "socket_connect_timeout": 1}})

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels.layers.redis.RedisSentinelChannelLayer",
        "ROUTING": "tests.reliability.project.routing.channel_routing",
        "CONFIG": _sentinel_config,
    }
}
