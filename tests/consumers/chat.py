"""A session-authenticated chat, as a Channels 1.1 project writes it: HTTP login view, a
WebSocket consumer that knows the user and joins a room group. Used by the flow tests (with the
test client and with a live server)."""

from __future__ import annotations

from django.contrib.auth import authenticate, login
from django.http import HttpResponse, HttpResponseForbidden
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from channels import route
from channels.generic.websockets import JsonWebsocketConsumer
from channels.handler import ViewConsumer
from channels.security.websockets import allowed_hosts_only


class ChatConsumer(JsonWebsocketConsumer):
    http_user = True  # message.user on every message, from the login cookie of the handshake
    strict_ordering = True  # frames run one after another, never before connect

    def connection_groups(self, room: str, **kwargs):
        return [f"chat-{room}"]

    @allowed_hosts_only
    def connect(self, message, room: str, **kwargs):
        if not message.user.is_authenticated:
            self.close()
            return
        self.accept()
        self.send({"hello": message.user.username, "room": room})

    def receive(self, content, room: str, **kwargs):
        message = self.message
        self.group_send(f"chat-{room}", {"from": message.user.username, "text": content["text"]})

    def disconnect(self, message, room: str, **kwargs):
        # A refused socket disconnects too: only the users who were let in are announced.
        if message.user.is_authenticated:
            self.group_send(f"chat-{room}", {"left": message.user.username})


@csrf_exempt
def login_view(request):
    user = authenticate(request, username=request.POST.get("username"),
                        password=request.POST.get("password"))
    if user is None:
        return HttpResponseForbidden("bad credentials")
    login(request, user)
    return HttpResponse("logged in")


def whoami_view(request):
    return HttpResponse(request.user.username if request.user.is_authenticated else "anonymous")


urlpatterns = [
    path("login/", login_view),
    path("whoami/", whoami_view),
]

channel_routing = [
    ChatConsumer.as_route(path=r"^/chat/(?P<room>[a-z0-9-]+)/$"),
    route("http.request", ViewConsumer()),
]


@csrf_exempt
def signup_view(request):
    """Creates an account (the live server's worker has its own database to put it in)."""
    from django.contrib.auth.models import User

    User.objects.create_user(request.POST["username"], password=request.POST["password"])
    return HttpResponse("created", status=201)


urlpatterns.append(path("signup/", signup_view))
