from channels.routing import route
from tests.core.project import consumers

channel_routing = [
    route("websocket.connect", consumers.ws_connect, path=r"^/echo/$"),
    route("websocket.receive", consumers.ws_echo, path=r"^/echo/$"),
    route("core.slow", consumers.slow_job),
]
