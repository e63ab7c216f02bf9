"""Routing (and an empty URLconf) of the JavaScript client tests' server and worker."""

from tests.js.consumers import JsonEcho, Streams, TextEcho

channel_routing = [
    JsonEcho.as_route(path=r"^/echo/$"),
    TextEcho.as_route(path=r"^/text/$"),
    Streams.as_route(path=r"^/streams/$"),
]

urlpatterns: list = []
