from django.db import models

#: What a room name may be: it appears in URLs and in the room's group name.
ROOM_NAME = r"[a-z0-9][a-z0-9-]{0,49}"


class Room(models.Model):
    """A chat room; visiting /chat/<name>/ creates it. Messages are not stored."""

    name = models.SlugField(max_length=50, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def group_name(self):
        return room_group(self.name)


def room_group(name):
    """The group of the sockets in one room."""
    return f"chat-{name}"
