"""Channel routing of the example: Channels 1.1 style, unchanged API."""

from channels.routing import route
from example_project.chat import consumers

channel_routing = [
    consumers.EchoConsumer.as_route(path=r"^/ws/echo/$"),
    route("websocket.connect", consumers.group_connect, path=r"^/ws/group/$"),
    route("websocket.receive", consumers.group_receive, path=r"^/ws/group/$"),
    route("websocket.disconnect", consumers.group_disconnect, path=r"^/ws/group/$"),
    consumers.ChatConsumer.as_route(path=r"^/ws/chat/(?P<room>[\w-]{1,50})/$"),
]
