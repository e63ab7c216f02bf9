"""Routing: which consumer handles a message, chosen by channel name and regexes on its keys.

A routing is a list (or a ``{channel: consumer}`` dict, or a dotted path to either) of
``route``, ``route_class`` and ``include`` entries; the first entry that matches wins. Bad
entries fail when the routing is loaded, not when the first message arrives.
"""

from __future__ import annotations

import copy
import importlib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from channels.handler import ViewConsumer
from channels.utils import name_that_thing

Consumer = Callable[..., Any]
MatchResult = tuple[Consumer, dict[str, Any]]


def _import_dotted(path: str, what: str) -> Any:
    module_name, _, attribute = path.rpartition(".")
    if not module_name:
        raise ImproperlyConfigured(f"Cannot import {what} {path!r}: not a dotted path")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ImproperlyConfigured(f"Cannot import {what} {path!r}: {exc}") from exc


def _text(value: Any) -> str:
    """Filters are text regexes; message values may be bytes (``query_string``) or ints."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _compile_filter(key: str, pattern: Any, allow_positional: bool = False) -> re.Pattern[str]:
    flags = 0
    if isinstance(pattern, re.Pattern):
        # A compiled regex keeps its flags (re.IGNORECASE ...), as Channels 1.1 used it as is;
        # a bytes one is recompiled as text, since values are matched as text.
        flags = pattern.flags & ~re.LOCALE if isinstance(pattern.pattern, bytes) else (
            pattern.flags)
        pattern = pattern.pattern
    if isinstance(pattern, bytes):
        pattern = pattern.decode("ascii")
    if not isinstance(pattern, str):
        raise ValueError(f"Filter {key}={pattern!r} must be a regex string")
    try:
        regex = re.compile(pattern, flags)
    except (re.error, ValueError) as exc:
        raise ValueError(f"Filter {key}={pattern!r} is not a valid regex: {exc}") from exc
    # Only named groups can become consumer kwargs; a positional group has nowhere to go.
    if not allow_positional and regex.groups != len(regex.groupindex):
        raise ValueError(
            f"Filter {key}={pattern!r} has positional groups; use named groups (?P<name>...) "
            "or non-capturing groups (?:...)"
        )
    return regex


def _channel_list(channels: Any) -> list[str]:
    if isinstance(channels, (str, bytes)):
        channels = [channels]
    names = []
    for channel in channels:
        name = channel.decode("ascii") if isinstance(channel, bytes) else channel
        if not isinstance(name, str) or not name:
            raise ValueError(f"Channel names must be non-empty strings, got {channel!r}")
        names.append(name)
    return names


class Route:
    """One channel (or several) to one consumer, optionally filtered by regexes on message keys."""

    def __init__(self, channels: str | bytes | Iterable[str | bytes], consumer: Any, **kwargs: Any):
        self.channels = _channel_list(channels)
        if isinstance(consumer, str):
            consumer = _import_dotted(consumer, "consumer")
        if not callable(consumer):
            raise ValueError(f"Consumer {consumer!r} for {self.channels} is not callable")
        self.consumer: Consumer = consumer
        self.filters = {key: _compile_filter(key, value) for key, value in kwargs.items()}

    def match(self, message: Any) -> MatchResult | None:
        return self._match(message.channel.name, message.content)

    def _match(self, channel: str, content: Mapping[str, Any],
               message: Any = None) -> MatchResult | None:
        if channel not in self.channels:
            return None
        call_args: dict[str, Any] = {}
        for key, regex in self.filters.items():
            if key not in content:
                return None
            match = regex.match(_text(content[key]))
            if match is None:
                return None
            call_args.update(match.groupdict())
        return self.consumer, call_args

    def channel_names(self) -> set[str]:
        return set(self.channels)

    def __str__(self) -> str:
        filters = ", ".join(f"{key}={regex.pattern!r}" for key, regex in self.filters.items())
        return f"{type(self).__name__}({self.channels} -> {name_that_thing(self.consumer)}" + (
            f", {filters})" if filters else ")"
        )


class RouteClass(Route):
    """A route whose channels come from a class consumer's ``channel_names()``."""

    def __init__(self, consumer: Any, **kwargs: Any):
        if isinstance(consumer, str):
            consumer = _import_dotted(consumer, "consumer")
        channel_names = getattr(consumer, "channel_names", None)
        if not callable(channel_names):
            raise ValueError(
                f"The consumer passed to route_class ({consumer!r}) has no channel_names() "
                "method; did you mean route()?"
            )
        super().__init__(list(channel_names()), consumer, **kwargs)


class Include:
    """A nested routing, optionally under prefixes that are cut off before its entries match."""

    def __init__(self, routing: Any, **kwargs: Any):
        self.routing = Router.resolve_routing(routing)
        # A prefix may have positional groups: only named ones are passed on.
        self.prefixes = {
            key: _compile_filter(key, value, allow_positional=True) for key, value in kwargs.items()
        }

    def match(self, message: Any) -> MatchResult | None:
        return self._match(message.channel.name, message.content, message)

    def _match(self, channel: str, content: Mapping[str, Any],
               message: Any = None) -> MatchResult | None:
        call_args: dict[str, Any] = {}
        if self.prefixes:
            # Only the keys we cut change, so a shallow copy is enough and leaves the message alone.
            content = dict(content)
            for key, regex in self.prefixes.items():
                if key not in content:
                    return None
                value = _text(content[key])
                match = regex.match(value)
                if match is None:
                    return None
                content[key] = value[match.end() :]
                call_args.update(match.groupdict())
        for entry in self.routing:
            if _matches_fast(entry):
                result = entry._match(channel, content, message)
            else:
                result = entry.match(_message_view(message, content))
            if result is not None:
                consumer, inner_args = result
                return consumer, {**call_args, **inner_args}
        return None

    def channel_names(self) -> set[str]:
        names: set[str] = set()
        for entry in self.routing:
            names |= set(entry.channel_names())
        return names


class Router:
    """The root of a routing: the worker asks it which channels to read and whom to call."""

    def __init__(self, routing: Any):
        self.root = Include(routing)
        self._defaults_added = False
        self.channels = self.root.channel_names()

    def add_route(self, route: Route | Include) -> None:
        """Append an entry (it matches only when nothing before it does)."""
        if not isinstance(route, (Route, Include)) and not _is_custom_entry(route):
            raise ValueError(
                f"Routing entries must be route(), route_class() or include(), got {route!r}"
            )
        self.root.routing.append(route)
        self.channels = self.root.channel_names()

    def match(self, message: Any) -> MatchResult | None:
        return self.root.match(message)

    def check_default(self, http_consumer: Consumer | None = None) -> None:
        """Add the fallbacks Channels 1.1 projects rely on; later calls do nothing.

        Unrouted ``http.request`` goes to Django's views, unrouted ``websocket.connect`` is
        accepted (the server holds the handshake until someone answers), and unrouted
        ``websocket.receive``/``disconnect`` are consumed so they do not pile up.
        """
        if self._defaults_added:
            return
        self._defaults_added = True
        if http_consumer is None:
            http_consumer = ViewConsumer()
        self.add_route(Route("http.request", http_consumer))
        self.add_route(Route("websocket.connect", connect_consumer))
        self.add_route(Route("websocket.receive", null_consumer))
        self.add_route(Route("websocket.disconnect", null_consumer))

    @classmethod
    def resolve_routing(cls, routing: Any) -> list[Route | Include]:
        """Turn a dotted path, dict or list into a list of entries, checking each one."""
        if isinstance(routing, str):
            routing = _import_dotted(routing, "routing")
        if isinstance(routing, Mapping):
            return [Route(channel, consumer) for channel, consumer in routing.items()]
        if not isinstance(routing, (list, tuple)):
            raise ValueError(
                f"A routing must be a list, a dict or a dotted path to one, got {routing!r}"
            )
        entries: list[Route | Include] = []
        for entry in routing:
            if isinstance(entry, (list, tuple)):
                # A nested list is an include without prefixes (as apply_routes builds them).
                entry = Include(list(entry))
            if not isinstance(entry, (Route, Include)) and not _is_custom_entry(entry):
                raise ValueError(
                    f"Routing entries must be route(), route_class() or include(), got {entry!r}"
                )
            entries.append(entry)
        return entries

    @classmethod
    def normalise_re_arg(cls, value: Any) -> Any:
        if isinstance(value, bytes):
            return value.decode("ascii")
        return value


def _is_custom_entry(entry: Any) -> bool:
    """Channels 1.1 took any object with ``match(message)`` and ``channel_names()`` as an entry."""
    return callable(getattr(entry, "match", None)) and callable(
        getattr(entry, "channel_names", None))


def _matches_fast(entry: Any) -> bool:
    """Our own entries match on (channel, content) without building a message per entry;
    subclasses that override ``match`` get a message, as in Channels 1.1."""
    return (isinstance(entry, Route) and type(entry).match is Route.match) or (
        isinstance(entry, Include) and type(entry).match is Include.match)


def _message_view(message: Any, content: Mapping[str, Any]) -> Any:
    """The message as a custom entry should see it: with an include's prefixes cut off."""
    if message is None or content is message.content:
        return message
    view = copy.copy(message)
    view.content = dict(content)
    return view


def null_consumer(*args: Any, **kwargs: Any) -> None:
    """Consumes a message and does nothing (default for websocket.receive/disconnect)."""


def connect_consumer(message: Any, *args: Any, **kwargs: Any) -> None:
    """Accepts a WebSocket nobody routed, so its handshake does not hang until the timeout."""
    message.reply_channel.send({"accept": True})


route = Route
route_class = RouteClass
include = Include
