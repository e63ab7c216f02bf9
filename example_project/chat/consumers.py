"""The chat socket: one per room page, a ``WebsocketDemultiplexer`` with a ``chat`` stream.

Frames from the browser: ``{"stream": "chat", "payload": {"text": "..."}}``. Frames to it, on
the same stream: ``{"event": "message", "user", "text", "time"}``, ``{"event": "joined" |
"left", "user", "time"}`` to the whole room, ``{"event": "error", "error"}`` to the sender.
"""

from django.utils import timezone

from channels.exceptions import DenyConnection
from channels.generic.websockets import (
    JsonWebsocketConsumer,
    WebsocketDemultiplexer,
    WebsocketMultiplexer,
)
from channels.security.websockets import allowed_hosts_only
from example_project.chat.models import room_group

STREAM = "chat"
MAX_LENGTH = 1000


def announce(room, event, **fields):
    """Send an event to every socket in the room, on the chat stream."""
    payload = {"event": event, "time": timezone.now().isoformat(), **fields}
    WebsocketMultiplexer.group_send(room_group(room), STREAM, payload)


class ChatConsumer(JsonWebsocketConsumer):
    """The ``chat`` stream. ``message.user`` is set by the demultiplexer (``http_user``)."""

    def connect(self, message, room=None, **kwargs):
        announce(room, "joined", user=self.message.user.get_username())

    def receive(self, content, room=None, multiplexer=None, **kwargs):
        text = content.get("text")
        if not isinstance(text, str) or not text.strip():
            multiplexer.send({"event": "error", "error": 'send {"text": "..."} with some text'})
            return
        if len(text) > MAX_LENGTH:
            multiplexer.send({"event": "error",
                              "error": f"messages are at most {MAX_LENGTH} characters"})
            return
        announce(room, "message", user=self.message.user.get_username(), text=text.strip())

    def disconnect(self, message, room=None, **kwargs):
        announce(room, "left", user=self.message.user.get_username())


class ChatDemultiplexer(WebsocketDemultiplexer):
    """The room's socket: logged-in users only; joins the room's group while open."""

    # Read the login from the handshake's session cookie, keep it for the socket's life.
    http_user = True
    # A socket's messages are handled in order even with several workers, so "joined" is
    # always announced before that user's first message.
    strict_ordering = True
    consumers = {STREAM: ChatConsumer}

    def connection_groups(self, room=None, **kwargs):
        return [room_group(room)]

    # The browser sends the session cookie with a socket opened by any site: only pages of
    # this site (an Origin in ALLOWED_HOSTS) may act as the user.
    @allowed_hosts_only
    def connect(self, message, **kwargs):
        if not message.user.is_authenticated:
            raise DenyConnection  # the handshake ends in 403; the page asks to log in
        super().connect(message, **kwargs)
