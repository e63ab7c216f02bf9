"""Deprecated (Channels 1.0 name): import from ``channels.test`` instead."""

import warnings

from channels.test import (  # noqa: F401
    ChannelTestCase,
    Client,
    HttpClient,
    TransactionChannelTestCase,
    WSClient,
    apply_routes,
)

warnings.warn(
    "channels.tests is deprecated; import from channels.test", DeprecationWarning, stacklevel=2
)
