"""Routing entries as Channels 1.1 projects write them: compiled regexes (with their flags) as
filters, hand-written entry objects with ``match`` and ``channel_names``, and ``route``
subclasses that override ``match``."""

from __future__ import annotations

import re

import pytest

from channels import include, route
from channels.asgi import channel_layers
from channels.message import Message
from channels.routing import Router
from channels.test import ChannelTestCase


def recorder(message, **kwargs):
    return kwargs


class RoutingFilterTests(ChannelTestCase):
    def match(self, routing, path):
        message = Message({"path": path}, "websocket.connect", channel_layers["default"])
        return Router(routing).match(message)

    def test_compiled_filter_keeps_its_flags(self):
        routing = [route("websocket.connect", recorder,
                         path=re.compile(r"^/CHAT/(?P<room>\w+)/$", re.IGNORECASE))]
        assert self.match(routing, "/chat/Lobby/") == (recorder, {"room": "Lobby"})
        assert self.match(routing, "/other/") is None

    def test_compiled_bytes_filter_is_matched_as_text_with_its_flags(self):
        routing = [route("websocket.connect", recorder,
                         path=re.compile(rb"^/CHAT/", re.IGNORECASE))]
        assert self.match(routing, "/chat/x/") == (recorder, {})


class PathRoute:
    """A hand-written routing entry, as Channels 1.1 allowed: ``match`` + ``channel_names``."""

    def match(self, message):
        if message.channel.name == "websocket.receive" and message["path"] == "/custom/":
            return recorder, {"seen_path": message["path"]}
        return None

    def channel_names(self):
        return ["websocket.receive"]  # a list: 1.1 only needed an iterable


class UpperRoute(route):
    """A ``route`` subclass overriding ``match``: it must still be asked."""

    def match(self, message):
        result = super().match(message)
        return None if result is None else (result[0], {"upper": message["text"].upper()})


class CustomRoutingEntryTests(ChannelTestCase):
    def message(self, **content):
        return Message(content, "websocket.receive", channel_layers["default"])

    def test_custom_entry_object_is_routed(self):
        router = Router([include([PathRoute()], path=r"^/prefix")])
        assert router.channels == {"websocket.receive"}
        # The include's prefix is cut off in the message the custom entry sees.
        assert router.match(self.message(path="/prefix/custom/")) == (
            recorder, {"seen_path": "/custom/"})
        assert router.match(self.message(path="/custom/")) is None

    def test_route_subclass_overriding_match_is_used(self):
        router = Router([UpperRoute("websocket.receive", recorder)])
        assert router.match(self.message(text="hi")) == (recorder, {"upper": "HI"})

    def test_other_objects_are_still_refused(self):
        with pytest.raises(ValueError, match="route"):
            Router([object()])
