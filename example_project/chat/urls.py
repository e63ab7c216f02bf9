from django.urls import path, re_path

from example_project.chat import views
from example_project.chat.models import ROOM_NAME

urlpatterns = [
    path("", views.index, name="index"),
    path("chat/", views.open_room, name="open-room"),
    re_path(rf"^chat/(?P<name>{ROOM_NAME})/$", views.room, name="room"),
]
