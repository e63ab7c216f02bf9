"""Refuse cross-site WebSocket connections.

Browsers do not apply the same-origin policy to WebSockets: any page can open a socket to any
host, and the browser sends its cookies along. A connect consumer that authenticates by session
cookie must therefore check the ``Origin`` header itself, or another site can act as the user.
"""

from __future__ import annotations

import functools
import logging
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host

from channels.exceptions import DenyConnection
from channels.message import Message
from channels.sessions import header_values

logger = logging.getLogger("channels.security")


class BaseOriginValidator:
    """Wraps a ``websocket.connect`` consumer (function or method) and refuses the connection
    (``DenyConnection``, so the handshake ends in 403) unless ``validate_origin`` says yes."""

    def __init__(self, func: Any) -> None:
        self.func = func
        functools.update_wrapper(self, func)

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        # Decorating a method: bind like a function would, so ``self`` reaches the consumer.
        if instance is None:
            return self
        return functools.partial(self.__call__, instance)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        message = next((arg for arg in args[:2] if isinstance(arg, Message)), None)
        if message is None:
            raise ValueError(
                f"{type(self).__name__} called without a Message as first or second argument"
            )
        origin = self.get_origin(message)
        try:
            allowed = self.validate_origin(message, origin)
        except DenyConnection:
            raise  # a refusal of its own, with its own reason
        except Exception:
            # A check that cannot decide must not let the socket in (nor crash the consumer
            # with an error the client would never see): refuse, and say why in the log.
            logger.exception("%s failed on origin %r; connection refused", type(self).__name__,
                             origin)
            allowed = False
        if not allowed:
            raise DenyConnection(f"origin {origin!r} is not allowed")
        return self.func(*args, **kwargs)

    @staticmethod
    def get_header(message: Message, name: str | bytes) -> list[bytes]:
        """The value of a header in an ASGI message as a one-item list (the shape Channels 1.1
        subclasses index with ``[0]``); ``KeyError`` when it is absent. Names are compared
        case-insensitively."""
        if isinstance(name, str):
            name = name.encode("ascii")
        values = header_values(message.get("headers"), name.lower())
        if not values:
            raise KeyError(f"No header named {name!r}")
        return [values[0].encode("latin-1")]

    def get_origin(self, message: Message) -> str:
        """The Origin header as text; refuses (``DenyConnection``) connections without exactly
        one well-formed one, whatever shape the headers are in.

        Browsers always send one Origin on WebSocket handshakes, so its absence means a
        non-browser client, or a proxy stripping it; neither can be checked, so neither is let
        in. Several Origin headers, or one with bytes no origin can contain (RFC 6454: a
        scheme, host and port, or ``null``), are not guessed at either.
        """
        try:
            count = len(header_values(message.get("headers"), b"origin"))
            origin = self.get_header(message, b"origin")[0] if count else b""
        except Exception:  # noqa: BLE001 - malformed headers of any kind: refuse, never crash
            raise DenyConnection("WebSocket handshake with malformed headers") from None
        if count > 1:
            raise DenyConnection("WebSocket handshake with several Origin headers")
        if isinstance(origin, (bytes, bytearray)):
            try:
                origin = bytes(origin).decode("ascii")
            except UnicodeDecodeError:
                raise DenyConnection("Origin header is not ASCII") from None
        if not isinstance(origin, str) or not origin:
            raise DenyConnection("WebSocket handshake without an Origin header")
        if not all("!" <= character <= "~" for character in origin):
            raise DenyConnection("Origin header has spaces, controls or non-ASCII characters")
        return origin

    def validate_origin(self, message: Message, origin: str) -> bool:
        raise NotImplementedError("origin validators must implement validate_origin()")


class AllowedHostsOnlyOriginValidator(BaseOriginValidator):
    """Lets in pages served from a host in ``ALLOWED_HOSTS`` (same wildcards as Django,
    any port)."""

    def validate_origin(self, message: Message, origin: str) -> bool:
        allowed_hosts = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not allowed_hosts:
            # Django's own default for development servers.
            allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]
        host = origin_host(origin)
        return bool(host) and validate_host(host, allowed_hosts)


def origin_host(origin: str) -> str | None:
    """The host part of an Origin (``https://Example.com:8443`` → ``example.com``), or None
    for the opaque ``null`` origin and anything that is not a scheme://host URL."""
    try:
        parts = urlsplit(origin)
        parts.port  # noqa: B018 - raises ValueError for a port that is not 0-65535
    except ValueError:  # unbalanced or invalid IPv6 brackets, bad port
        return None
    if not parts.scheme or not parts.netloc or "@" in parts.netloc:
        return None
    domain, _port = split_domain_port(parts.netloc.lower())
    return domain or None


allowed_hosts_only = AllowedHostsOnlyOriginValidator
