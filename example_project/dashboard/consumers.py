"""The dashboard socket: a ``WebsocketDemultiplexer`` whose ``items`` stream is the binding."""

from channels.exceptions import DenyConnection
from channels.generic.websockets import WebsocketDemultiplexer
from channels.security.websockets import allowed_hosts_only
from example_project.dashboard.bindings import DASHBOARD_GROUP, ItemBinding


class DashboardDemultiplexer(WebsocketDemultiplexer):
    # The binding checks permissions against the browser's login, read from the handshake.
    http_user = True
    consumers = {ItemBinding.stream: ItemBinding.consumer}

    def connection_groups(self, **kwargs):
        return [DASHBOARD_GROUP]

    # The browser sends the session cookie with a socket opened by any site: only pages of
    # this site (an Origin in ALLOWED_HOSTS) may act as the user.
    @allowed_hosts_only
    def connect(self, message, **kwargs):
        if not message.user.is_authenticated:
            raise DenyConnection  # the handshake ends in 403
        super().connect(message, **kwargs)
