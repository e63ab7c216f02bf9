"""``ChannelTestCase``, the test ``Client`` and ``apply_routes``.

Tests run consumers in the test's own thread against a fresh in-memory layer, so a test sees
exactly the messages it caused and nothing leaks into the next test.
"""

from __future__ import annotations

import copy
import functools
import random
import string
from collections.abc import Callable
from typing import Any

from django.test import TestCase, TransactionTestCase

from channels import DEFAULT_CHANNEL_LAYER
from channels.asgi import ChannelLayerWrapper, channel_layers
from channels.exceptions import ChannelSocketException, DenyConnection
from channels.layers.inmemory import InMemoryChannelLayer
from channels.message import Message, pending_message_store
from channels.routing import Router, include
from channels.signals import consumer_finished, consumer_started


def _current_routing(alias: str) -> Any:
    """The routing of an alias without building its configured layer (it may be Redis)."""
    wrapper = channel_layers.backends.get(alias)
    if wrapper is not None:
        return wrapper.routing
    config = channel_layers.configs.get(alias) or {}
    return config.get("ROUTING", [])


def _copy_routing(routing: Any) -> Any:
    return list(routing) if isinstance(routing, (list, tuple)) else routing


class ChannelTestMixin:
    """Swaps each alias in ``test_channel_aliases`` for a fresh in-memory layer during a test."""

    test_channel_aliases: list[str] = [DEFAULT_CHANNEL_LAYER]

    def _setup_and_call(self, result: Any, debug: bool = False) -> None:
        # Django's own per-test hooks (_pre_setup) became class-level for
        # TransactionTestCase, so the swap brackets the whole per-test run instead.
        self._swap_in_test_layers()
        try:
            super()._setup_and_call(result, debug)  # type: ignore[misc]
        finally:
            self._restore_layers()

    def _swap_in_test_layers(self) -> None:
        self._old_layers: dict[str, ChannelLayerWrapper | None] = {}
        for alias in self.test_channel_aliases:
            fresh = ChannelLayerWrapper(
                InMemoryChannelLayer(), alias, _copy_routing(_current_routing(alias))
            )
            self._old_layers[alias] = channel_layers.set(alias, fresh)

    def _restore_layers(self) -> None:
        for alias, old in self._old_layers.items():
            test_layer = channel_layers.set(alias, old)
            if test_layer is not None:
                test_layer.channel_layer.close()
        self._old_layers = {}

    def get_next_message(self, channel: str, alias: str = DEFAULT_CHANNEL_LAYER,
                         require: bool = False) -> Message | None:
        """The next message on ``channel`` or None; ``require=True`` fails the test instead."""
        layer = channel_layers[alias]
        received_channel, content = layer.receive([channel], block=False)
        if received_channel is None:
            if require:
                self.fail(f"Expected a message on channel {channel!r}, got none")  # type: ignore
            return None
        return Message(content, received_channel, layer)


#: The Channels 1.1 name, still subclassed by test suites written for it.
ChannelTestCaseMixin = ChannelTestMixin


class ChannelTestCase(ChannelTestMixin, TestCase):
    """A Django ``TestCase`` (each test in a rolled-back transaction) with its own layer."""


class TransactionChannelTestCase(ChannelTestMixin, TransactionTestCase):
    """A Django ``TransactionTestCase`` with its own layer (for code that commits)."""


class Client:
    """Sends messages as one socket (its own reply channel) and runs their consumers here.

    ``consume`` does what a worker does for one message, in the calling thread, except that
    consumer exceptions reach the test instead of a log.
    """

    def __init__(self, alias: str = DEFAULT_CHANNEL_LAYER) -> None:
        self.alias = alias
        self.reply_channel = alias + "".join(random.choices(string.ascii_letters, k=12))

    @property
    def channel_layer(self) -> ChannelLayerWrapper:
        """Looked up each time: the test case swaps the layer after the client may be built."""
        return channel_layers[self.alias]

    def get_next_message(self, channel: str) -> Message | None:
        received_channel, content = self.channel_layer.receive([channel], block=False)
        if received_channel is None:
            return None
        return Message(content, received_channel, self.channel_layer)

    def get_consumer_by_channel(self, channel: str) -> Callable[..., Any] | None:
        """The consumer a message on ``channel`` would reach (ignoring key filters' misses)."""
        message = Message({"text": "", "path": "/"}, channel, self.channel_layer)
        match = self.channel_layer.router.match(message)
        return match[0] if match else None

    def send(self, to: str, content: dict[str, Any] | None = None) -> None:
        content = copy.deepcopy(content or {})
        content.setdefault("reply_channel", self.reply_channel)
        self.channel_layer.send(to, content)

    def consume(self, channel: str, fail_on_none: bool = True) -> Any:
        """Route and run the next message on ``channel``; returns what the consumer returned
        (for a class consumer, the instance). Its queued sends go out when it returns."""
        message = self.get_next_message(channel)
        if message is None:
            if fail_on_none:
                raise AssertionError(f"No message to consume on {channel!r}")
            return None
        match = self.channel_layer.router.match(message)
        if match is None:
            if fail_on_none:
                raise AssertionError(f"Can't find a consumer for {message!r}")
            return None
        consumer, kwargs = match
        consumer_started.send(sender=self.__class__, environ={})
        try:
            return consumer(message, **kwargs)
        except DenyConnection:
            # The refusal the worker would send (HTTP 403 at the server) goes out, and the
            # exception still reaches the test, as in Channels 1.1 (assertRaises(DenyConnection)).
            pending_message_store.discard()
            if message.channel.name == "websocket.connect" and message.reply_channel:
                message.reply_channel.send({"close": True}, immediately=True)
            raise
        except ChannelSocketException as exc:
            pending_message_store.discard()
            exc.run(message)
            return None
        except BaseException:
            pending_message_store.discard()
            raise
        finally:
            consumer_finished.send(sender=self.__class__)

    def send_and_consume(self, channel: str, content: dict[str, Any] | None = None,
                         fail_on_none: bool = True) -> Any:
        self.send(channel, content)
        return self.consume(channel, fail_on_none=fail_on_none)

    def receive(self) -> dict[str, Any] | None:
        """The content of the next message sent to this client, or None."""
        message = self.get_next_message(self.reply_channel)
        return message.content if message is not None else None

    def join_group(self, group_name: str) -> None:
        self.channel_layer.group_add(group_name, self.reply_channel)


class apply_routes:  # noqa: N801 - Channels 1.1 name, used as a decorator
    """Use other routes for a block, a test function or every test of a class.

    ``routes`` is a list of routes, a single route, or a list of lists (each becomes an
    ``include``). The routing is restored afterwards, on every alias given.
    """

    def __init__(self, routes: Any, aliases: list[str] | None = None) -> None:
        self.routes = routes
        self.aliases = list(aliases or [DEFAULT_CHANNEL_LAYER])
        self._old_layers: list[dict[str, ChannelLayerWrapper | None]] = []

    def _routing(self) -> list[Any]:
        routes = self.routes
        if isinstance(routes, (list, tuple)):
            if routes and isinstance(routes[0], (list, tuple)):
                return [include(list(entry)) for entry in routes]
            return list(routes)
        return [routes]

    def enter(self) -> None:
        routing = self._routing()
        Router(routing)  # fail here, on the test's line, if a route is broken
        saved: dict[str, ChannelLayerWrapper | None] = {}
        for alias in self.aliases:
            current = channel_layers[alias]
            saved[alias] = channel_layers.set(
                alias, ChannelLayerWrapper(current.channel_layer, alias, routing)
            )
        self._old_layers.append(saved)

    def exit(self, *exc_info: Any) -> None:
        saved = self._old_layers.pop()
        for alias, old in saved.items():
            channel_layers.set(alias, old)

    def __enter__(self) -> apply_routes:
        self.enter()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.exit()

    def __call__(self, test: Any) -> Any:
        if isinstance(test, type):
            original_setup, original_teardown = test.setUp, test.tearDown

            def setUp(this: Any) -> None:  # noqa: N802 - unittest's name
                self.enter()
                original_setup(this)

            def tearDown(this: Any) -> None:  # noqa: N802
                try:
                    original_teardown(this)
                finally:
                    self.exit()

            test.setUp, test.tearDown = setUp, tearDown
            return test

        @functools.wraps(test)
        def inner(*args: Any, **kwargs: Any) -> Any:
            with self:
                return test(*args, **kwargs)

        return inner
