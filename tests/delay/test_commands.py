"""``manage.py rundelay``: its options and what it refuses (in-process)."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from channels.delay.management.commands.rundelay import Command


def test_rundelay_offers_the_channels_1_options():
    help_text = Command().create_parser("manage.py", "rundelay").format_help()
    assert "--layer" in help_text and "--sleep" in help_text


def test_rundelay_refuses_the_in_memory_layer():
    # The test settings' default layer is the in-memory one.
    with pytest.raises(CommandError, match="in-memory layer"):
        call_command("rundelay")


def test_rundelay_rejects_an_unknown_layer_alias():
    with pytest.raises(CommandError, match="nope"):
        call_command("rundelay", layer="nope")


@pytest.mark.parametrize("sleep", ["0", "-1", "inf", "nan"])
def test_rundelay_rejects_a_sleep_that_is_not_a_positive_number(sleep):
    with pytest.raises(CommandError, match="--sleep must be a positive number"):
        call_command("rundelay", "--sleep", sleep)
