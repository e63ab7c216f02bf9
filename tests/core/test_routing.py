"""Routing: channel names, regex filters, include prefixes, defaults, load-time errors."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from channels.message import Message
from channels.routing import Router, connect_consumer, include, null_consumer, route, route_class


def consumer_a(message, **kwargs):
    return "a"


def consumer_b(message, **kwargs):
    return "b"


class ClassConsumer:
    @classmethod
    def channel_names(cls):
        return {"websocket.connect", "websocket.receive"}

    def __init__(self, message, **kwargs):
        pass


# Referenced by dotted path from tests below.
inner_routing = [
    route("websocket.receive", consumer_b, path=r"^/(?P<room>[a-z]+)/$"),
    route("websocket.receive", consumer_a),
]
dict_routing = {
    "http.request": consumer_a,
    "websocket.connect": "tests.core.test_routing.consumer_b",
}


def msg(channel, **content):
    return Message(content, channel, channel_layer=object())


def test_first_matching_route_wins_and_filters_apply():
    router = Router([
        route("http.request", consumer_b, method=r"^POST$"),
        route("http.request", consumer_a),
    ])
    assert router.match(msg("http.request", method="POST")) == (consumer_b, {})
    assert router.match(msg("http.request", method="GET")) == (consumer_a, {})
    assert router.match(msg("websocket.connect", method="GET")) is None


def test_named_groups_become_kwargs():
    router = Router([route("websocket.connect", consumer_a, path=r"^/chat/(?P<room>\w+)/$")])
    assert router.match(msg("websocket.connect", path="/chat/lobby/")) == (
        consumer_a, {"room": "lobby"})
    assert router.match(msg("websocket.connect", path="/other/")) is None


def test_filter_on_missing_key_does_not_match():
    router = Router([route("websocket.connect", consumer_a, path=r"^/chat/$")])
    assert router.match(msg("websocket.connect")) is None


def test_filters_are_anchored_at_start_only():
    router = Router([route("http.request", consumer_a, path=r"/a")])
    assert router.match(msg("http.request", path="/abc")) is not None
    assert router.match(msg("http.request", path="/x/a")) is None


def test_bytes_values_and_patterns_are_normalised():
    router = Router([route(b"http.request", consumer_a, query_string=b"^page=(?P<page>\\d+)")])
    assert router.match(msg("http.request", query_string=b"page=3")) == (consumer_a, {"page": "3"})


def test_include_strips_prefix_and_merges_kwargs():
    router = Router([
        include("tests.core.test_routing.inner_routing", path=r"^/rooms(?P<house>\d)"),
    ])
    message = msg("websocket.receive", path="/rooms1/lobby/")
    assert router.match(message) == (consumer_b, {"house": "1", "room": "lobby"})
    # The consumer still gets the full path: stripping happens on a copy.
    assert message["path"] == "/rooms1/lobby/"
    assert router.match(msg("websocket.receive", path="/elsewhere/")) is None


def test_include_falls_through_to_later_inner_routes():
    router = Router([include(inner_routing, path=r"^/rooms")])
    assert router.match(msg("websocket.receive", path="/rooms/UPPER/")) == (consumer_a, {})


def test_dict_routing_and_dotted_consumers():
    router = Router("tests.core.test_routing.dict_routing")
    assert router.channels == {"http.request", "websocket.connect"}
    assert router.match(msg("websocket.connect")) == (consumer_b, {})


def test_route_class_takes_channels_from_consumer():
    router = Router([route_class(ClassConsumer, path=r"^/x/$")])
    assert router.channels == {"websocket.connect", "websocket.receive"}
    assert router.match(msg("websocket.receive", path="/x/"))[0] is ClassConsumer


def test_channels_union_over_includes_and_add_route():
    router = Router([route("a.b", consumer_a), include([route("c.d", consumer_b)], path="^/")])
    assert router.channels == {"a.b", "c.d"}
    router.add_route(route("e.f", consumer_a))
    assert router.channels == {"a.b", "c.d", "e.f"}


def test_check_default_adds_fallbacks_after_user_routes_once():
    router = Router([route("websocket.connect", consumer_a, path=r"^/mine/$")])
    router.check_default(http_consumer=consumer_b)
    router.check_default(http_consumer=consumer_a)  # second call changes nothing
    assert router.match(msg("http.request", path="/")) == (consumer_b, {})
    assert router.match(msg("websocket.connect", path="/mine/")) == (consumer_a, {})
    assert router.match(msg("websocket.connect", path="/other/")) == (connect_consumer, {})
    assert router.match(msg("websocket.receive", path="/"))[0] is null_consumer
    assert router.match(msg("websocket.disconnect", path="/"))[0] is null_consumer
    assert len(router.root.routing) == 5


def test_positional_groups_are_rejected_at_load_time():
    with pytest.raises(ValueError, match="positional groups"):
        route("http.request", consumer_a, path=r"^/(\d+)/$")


def test_invalid_regex_is_a_clear_value_error():
    with pytest.raises(ValueError, match="not a valid regex"):
        route("http.request", consumer_a, path=r"^/(unclosed$")


def test_non_callable_consumer_is_rejected():
    with pytest.raises(ValueError, match="not callable"):
        route("http.request", 42)


def test_unimportable_consumer_or_routing_is_improperly_configured():
    with pytest.raises(ImproperlyConfigured, match="no_such_module"):
        route("http.request", "no_such_module.consumer")
    with pytest.raises(ImproperlyConfigured, match="missing_routing"):
        Router("tests.core.test_routing.missing_routing")


def test_route_class_without_channel_names_is_rejected():
    with pytest.raises(ValueError, match="channel_names"):
        route_class(consumer_a)


def test_bad_routing_entries_are_rejected():
    with pytest.raises(ValueError, match="route\\(\\), route_class\\(\\) or include\\(\\)"):
        Router([consumer_a])
    with pytest.raises(ValueError, match="must be a list"):
        Router(42)
    with pytest.raises(ValueError, match="non-empty strings"):
        route("", consumer_a)


def test_route_str_names_consumer_and_filters():
    text = str(route("http.request", consumer_a, path="^/x"))
    assert "tests.core.test_routing.consumer_a" in text and "path='^/x'" in text


def test_nested_list_is_an_include_without_prefix():
    router = Router([[route("a.b", consumer_a)], route("c.d", consumer_b)])
    assert router.match(msg("a.b")) == (consumer_a, {})
    assert router.channels == {"a.b", "c.d"}


def test_name_that_thing_names_functions_classes_methods_and_instances():
    from channels.handler import ViewConsumer
    from channels.utils import name_that_thing

    assert name_that_thing(consumer_a) == "tests.core.test_routing.consumer_a"
    assert name_that_thing(ClassConsumer) == "tests.core.test_routing.ClassConsumer"
    assert name_that_thing(ClassConsumer.channel_names) == (
        "tests.core.test_routing.ClassConsumer.channel_names")
    assert name_that_thing(ViewConsumer.__new__(ViewConsumer)) == "channels.handler.ViewConsumer"
