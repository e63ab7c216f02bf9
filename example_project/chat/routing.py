from channels.routing import route_class
from example_project.chat.consumers import ChatDemultiplexer
from example_project.chat.models import ROOM_NAME

channel_routing = [
    route_class(ChatDemultiplexer, path=rf"^/ws/chat/(?P<room>{ROOM_NAME})/$"),
]
