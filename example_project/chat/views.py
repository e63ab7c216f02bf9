import re

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.text import slugify

from example_project.chat.models import ROOM_NAME, Room


def index(request):
    """The room list, and a form to open (create) a room by name."""
    return render(request, "chat/index.html", {"rooms": Room.objects.all(), "section": "chat"})


def open_room(request):
    """The index form's target: turns what was typed into a room name and goes there."""
    name = slugify(request.GET.get("name", ""))[:50].strip("-")
    if not re.fullmatch(ROOM_NAME, name):
        return redirect("index")
    return redirect("room", name=name)


@login_required
def room(request, name):
    room, _ = Room.objects.get_or_create(name=name)
    return render(request, "chat/room.html",
                  {"room": room, "rooms": Room.objects.all(), "section": "chat"})
