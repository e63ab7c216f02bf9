"""The project's channel routing, Channels 1.1 style: each app routes its own sockets."""

from channels.routing import include, route
from example_project import probes

channel_routing = [
    include("example_project.chat.routing.channel_routing"),
    include("example_project.dashboard.routing.channel_routing"),
    probes.EchoConsumer.as_route(path=r"^/ws/echo/$"),
    route("websocket.connect", probes.broadcast_connect, path=r"^/ws/group/$"),
    route("websocket.receive", probes.broadcast_receive, path=r"^/ws/group/$"),
    route("websocket.disconnect", probes.broadcast_disconnect, path=r"^/ws/group/$"),
]
