"""``BaseConsumer``: routing stores the class, and calling it with a message is the dispatch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from channels.auth import channel_session_user, http_session_user
from channels.message import Message
from channels.routing import RouteClass, route_class
from channels.sessions import channel_and_http_session, channel_session


class BaseConsumer:
    """Maps channel names to methods (``method_mapping``) and runs the one for a message.

    Because constructing the object runs the handler, one instance lives for exactly one
    message: state that must outlive it belongs in ``message.channel_session``.
    """

    method_mapping: ClassVar[dict[str, str]] = {}
    # Wrap handlers in these decorators (the names of Channels 1.1, hence no ``use_`` prefix).
    channel_session: bool = False
    channel_session_user: bool = False
    # ``message.user`` from the browser's session cookie on each message (HTTP-style channels);
    # the WebSocket consumer reinterprets these, as only its handshake carries cookies.
    http_user: bool = False
    http_user_and_session: bool = False

    def __init__(self, message: Message, **kwargs: Any) -> None:
        self.message = message
        self.kwargs = kwargs
        self.dispatch(message, **kwargs)

    @classmethod
    def channel_names(cls) -> set[str]:
        """The channels to route here (``route_class`` asks this)."""
        return set(cls.method_mapping)

    @classmethod
    def as_route(cls, attrs: dict[str, Any] | None = None, **kwargs: Any) -> RouteClass:
        """A ``route_class`` for this consumer; ``attrs`` makes a same-named subclass first,
        so one class can be routed twice with different settings."""
        consumer: type[BaseConsumer] = cls
        if attrs:
            if not isinstance(attrs, dict):
                raise ValueError(f"as_route(attrs=...) must be a dict, got {attrs!r}")
            consumer = type(cls.__name__, (cls,), attrs)
        return route_class(consumer, **kwargs)

    def get_handler(self, message: Message, **kwargs: Any) -> Callable[..., Any]:
        """The bound method for the message's channel, with the session decorators applied."""
        handler = self.apply_session_decorators(self.mapped_method(message))
        if self.http_user_and_session:
            return http_session_user(channel_and_http_session(handler))
        if self.http_user:
            return http_session_user(handler)
        return handler

    def mapped_method(self, message: Message) -> Callable[..., Any]:
        """The undecorated method ``method_mapping`` names for the message's channel."""
        try:
            method_name = self.method_mapping[message.channel.name]
        except KeyError:
            raise ValueError(
                f"{type(self).__name__} has no method mapped for channel "
                f"{message.channel.name!r} (method_mapping has {sorted(self.method_mapping)})"
            ) from None
        return getattr(self, method_name)

    def apply_session_decorators(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        if self.channel_session_user:
            return channel_session_user(handler)
        if self.channel_session:
            return channel_session(handler)
        return handler

    def dispatch(self, message: Message, **kwargs: Any) -> Any:
        return self.get_handler(message, **kwargs)(message, **kwargs)
