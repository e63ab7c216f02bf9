from channels.routing import route
from tests.reliability.project import consumers

channel_routing = [
    route("websocket.connect", consumers.ws_accept, path=r"^/echo/$"),
    route("websocket.receive", consumers.ws_echo, path=r"^/echo/$"),
    route("websocket.connect", consumers.ws_info, path=r"^/info/$"),
    route("websocket.connect", consumers.ws_whoami, path=r"^/whoami/$"),
    route("websocket.disconnect", consumers.ws_disconnect),
    route("rel.block", consumers.blocking_job),
    route("rel.group", consumers.group_job),
    *[route(name, consumers.job) for name in consumers.JOB_CHANNELS],
]
