"""Bad input gets a clear error naming what was wrong, and writes nothing (every backend)."""

from __future__ import annotations

import datetime
import decimal
import enum

import pytest

from channels.layers.base import MessageTooLarge

BAD_CHANNEL_NAMES = [
    ("has space", ValueError),
    ("x" * 101, ValueError),
    ("two!bangs!", ValueError),
    ("mixed?and!", ValueError),
    ("reply?", ValueError),
    ("ünïcode", ValueError),
    ("", ValueError),
    (b"bytes", TypeError),
    (None, TypeError),
]

BAD_MESSAGES = [
    ({"when": datetime.datetime(2020, 1, 1)}, r"message\['when'\] is of type datetime"),
    ({"deep": {"list": [1, {2: "int key"}]}}, r"message\['deep'\]\['list'\]\[1\] has a key"),
    ({"big": 2**63}, r"message\['big'\] is an int outside"),
    ({"set": {1, 2}}, r"message\['set'\] is of type set"),
    ({"money": decimal.Decimal("1.5")}, "Decimal"),
    ({"headers": [[b"host", b"x"], [b"big", 2**64]]}, r"message\['headers'\]\[1\]\[1\] is an int"),
    ({"headers": [[b"host", b"x"], (b"when", datetime.date(2020, 1, 1))]},
     r"message\['headers'\]\[1\]\[1\] is of type date"),
    ("not a dict", "must be a dict"),
    ([("a", 1)], "must be a dict"),
]


def assert_nothing_written(layer, channel="test.bad"):
    assert layer.receive([channel]) == (None, None)
    assert layer.global_statistics()["messages_count"] == 0


@pytest.mark.parametrize(("name", "error"), BAD_CHANNEL_NAMES)
def test_invalid_channel_names_are_refused_with_the_name(layer, name, error):
    with pytest.raises(error) as raised:
        layer.send(name, {"a": 1})
    assert repr(name)[:40] in str(raised.value)
    with pytest.raises((ValueError, TypeError)):
        layer.receive([name])
    with pytest.raises((ValueError, TypeError)):
        layer.group_add("test-group", name)
    assert layer.group_channels("test-group") == []
    assert layer.global_statistics()["messages_count"] == 0


@pytest.mark.parametrize("group", ["with space", "has!bang", "has?mark", "g" * 101, 42])
def test_invalid_group_names_are_refused_with_the_name(layer, group):
    with pytest.raises((ValueError, TypeError), match="Group name"):
        layer.group_add(group, "test.channel")
    with pytest.raises((ValueError, TypeError), match="Group name"):
        layer.send_group(group, {})


@pytest.mark.parametrize("channels", ["test.a", [], None, [1]])
def test_receive_needs_a_list_of_names(layer, channels):
    with pytest.raises((ValueError, TypeError)):
        layer.receive(channels)


@pytest.mark.parametrize(("message", "complaint"), BAD_MESSAGES)
def test_values_a_message_cannot_carry_are_refused_with_their_path(layer, message, complaint):
    with pytest.raises(TypeError, match=complaint):
        layer.send("test.bad", message)
    layer.group_add("test-group", "test.bad")
    with pytest.raises(TypeError, match=complaint):
        layer.send_group("test-group", message)
    assert_nothing_written(layer)


def test_nested_subclasses_of_allowed_types_are_carried(layer):
    class Kind(enum.IntEnum):
        TEXT = 1

    class Name(str):
        pass

    layer.send("test.ok", {"headers": [[Name("host"), b"x"]], "kinds": {"a": [Kind.TEXT]}})
    _, message = layer.receive(["test.ok"])
    assert message == {"headers": [["host", b"x"]], "kinds": {"a": [1]}}


def test_oversize_message_is_refused_with_its_size(make_layer):
    layer = make_layer(max_message_size=1000)
    with pytest.raises(MessageTooLarge, match=r"\d+ bytes serialised, the limit is 1000"):
        layer.send("test.bad", {"body": b"x" * 1001})
    assert_nothing_written(layer)


@pytest.mark.parametrize("option", [{"capacity": 0}, {"expiry": -1}, {"capacity": "10"},
                                    {"channel_capacity": {"x*": 0}},
                                    {"channel_capacity": {5: 10}}])
def test_invalid_options_are_refused(make_layer, option):
    with pytest.raises((ValueError, TypeError)):
        make_layer(**option)
