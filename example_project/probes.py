"""Endpoints with no page of their own, kept for smoke and load tests of a running stack:
``GET /hello``, an echo socket at ``/ws/echo/`` and a broadcast socket at ``/ws/group/``
(every frame it receives goes to every socket connected there)."""

from django.http import HttpResponse

from channels import Group
from channels.generic.websockets import WebsocketConsumer

BROADCAST_GROUP = "bench"


def hello(request):
    return HttpResponse("Hello, world", content_type="text/plain")


class EchoConsumer(WebsocketConsumer):
    """Sends every frame straight back to the socket it came from."""

    def receive(self, text=None, bytes=None, **kwargs):
        self.send(text=text, bytes=bytes)


def broadcast_connect(message):
    Group(BROADCAST_GROUP).add(message.reply_channel)
    message.reply_channel.send({"accept": True})


def broadcast_receive(message):
    if message.content.get("text") is not None:
        Group(BROADCAST_GROUP).send({"text": message.content["text"]})
    else:
        Group(BROADCAST_GROUP).send({"bytes": message.content.get("bytes") or b""})


def broadcast_disconnect(message):
    Group(BROADCAST_GROUP).discard(message.reply_channel)
