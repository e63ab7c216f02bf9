"""``runserver`` prints Django's start-up banner (itself where Django has no ``on_bind``), with
the WebSocket URL and the channel layer added."""

from __future__ import annotations

import io

from django.core.management.base import OutputWrapper


def runserver_command(addr: str):
    from channels.management.commands.runserver import Command

    command = Command()
    command.stdout = OutputWrapper(io.StringIO())
    command.addr, command.port, command._raw_ipv6 = addr, "8000", False
    command.channel_layer = "default (test)"
    return command


def output_lines(command) -> list[str]:
    return [line for line in command.stdout._out.getvalue().splitlines() if line]


def test_runserver_banner_fallback_matches_djangos_banner():
    """Django versions without ``on_bind`` get the same banner words (after the date)."""
    ours, djangos = runserver_command("127.0.0.1"), runserver_command("127.0.0.1")
    ours._print_django_banner(8123)
    djangos.on_bind(8123)
    # Line 1 is the date; Django 5 adds a production warning after the four banner lines.
    assert output_lines(ours)[1:4] == output_lines(djangos)[1:4]
    assert "Starting development server at http://127.0.0.1:8123/" in output_lines(ours)


def test_runserver_prints_the_banner_itself_where_django_has_no_on_bind(monkeypatch):
    from django.core.management.commands.runserver import Command as DjangoRunserver

    monkeypatch.delattr(DjangoRunserver, "on_bind")
    command = runserver_command("0")
    command._server_ready([("0.0.0.0", 8123)])
    lines = output_lines(command)
    assert "Starting development server at http://0.0.0.0:8123/" in lines
    assert "WebSocket URL: ws://0.0.0.0:8123/" in lines


def test_runserver_websocket_url_shows_all_interfaces_address():
    command = runserver_command("0")
    command._server_ready([("0.0.0.0", 8123)])
    assert "WebSocket URL: ws://0.0.0.0:8123/" in output_lines(command)
    assert "Channel layer default (test)" in output_lines(command)
