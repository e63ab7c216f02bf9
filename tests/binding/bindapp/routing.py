from channels.generic.websockets import WebsocketDemultiplexer
from channels.routing import route_class
from tests.binding.bindapp.bindings import IntegerValueBinding


class ValuesDemultiplexer(WebsocketDemultiplexer):
    """One socket per room: it hears about the values in its room, and may change them."""

    http_user = True  # the socket acts as the browser's logged-in user
    consumers = {"intval": IntegerValueBinding.consumer}

    def connection_groups(self, room="lobby", **kwargs):
        return [f"values-{room}"]


channel_routing = [route_class(ValuesDemultiplexer, path=r"^/values/(?P<room>[a-z]+)/$")]
