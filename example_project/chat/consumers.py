"""The example's consumers: an echo socket, a broadcast group and a session-authenticated chat."""

from channels import Group
from channels.generic.websockets import JsonWebsocketConsumer, WebsocketConsumer


class EchoConsumer(WebsocketConsumer):
    """Sends every frame straight back to the socket it came from."""

    def receive(self, text=None, bytes=None, **kwargs):
        self.send(text=text, bytes=bytes)


def group_connect(message):
    Group("bench").add(message.reply_channel)
    message.reply_channel.send({"accept": True})


def group_receive(message):
    """Broadcast each frame to every member of the group (the bench's fan-out endpoint)."""
    if message.content.get("text") is not None:
        Group("bench").send({"text": message.content["text"]})
    else:
        Group("bench").send({"bytes": message.content.get("bytes") or b""})


def group_disconnect(message):
    Group("bench").discard(message.reply_channel)


class ChatConsumer(JsonWebsocketConsumer):
    """One chat room per URL; the sender is the Django user logged in over HTTP.

    ``http_user = True`` reads the user from the session cookie of the handshake and keeps it in
    the channel session, so ``self.message.user`` is set on every later message of the socket too.
    """

    http_user = True
    strict_ordering = True

    def connection_groups(self, room=None, **kwargs):
        return [f"chat-{room}"]

    def connect(self, message, room=None, **kwargs):
        self.message.reply_channel.send({"accept": True})
        self.group_send(f"chat-{room}", {"event": "joined", "user": self.username()})

    def raw_receive(self, message, **kwargs):
        """Anyone can type into a socket from a browser console: a frame that is not a JSON object
        gets an error event back (and the socket stays open) instead of an exception in the worker.
        """
        try:
            content = self.decode_json(message.get("text") or "")
        except ValueError:
            content = None
        if not isinstance(content, dict):
            self.send({"event": "error", "error": 'frames must be JSON objects: {"text": "..."}'})
            return
        self.receive(content, **kwargs)

    def receive(self, content, room=None, **kwargs):
        text = str(content.get("text", ""))[:2000]
        self.group_send(f"chat-{room}", {"event": "message", "user": self.username(), "text": text})

    def disconnect(self, message, room=None, **kwargs):
        self.group_send(f"chat-{room}", {"event": "left", "user": self.username()})

    def username(self):
        user = self.message.user
        return user.get_username() if user.is_authenticated else "anonymous"
