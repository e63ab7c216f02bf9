"""``WSClient``: a test client that behaves like a browser's WebSocket (cookies, session,
headers, path, ``order``)."""

from __future__ import annotations

import copy
import json
from importlib import import_module
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest
from django.http.cookie import SimpleCookie

from channels import DEFAULT_CHANNEL_LAYER
from channels.sessions import _create_channel_session, _load_channel_session
from channels.test.base import Client


def _cookie_header(cookies: dict[str, str]) -> bytes:
    morsels = SimpleCookie()
    for name, value in cookies.items():
        morsels[name] = value
    return "; ".join(
        morsel.OutputString(attrs=[]) for morsel in morsels.values()
    ).encode("latin-1")


class WSClient(Client):
    """Sends ``websocket.*`` messages as a browser's socket would.

    The first message carries the session cookie, as only the handshake carries cookies;
    ``ordered=True`` numbers messages (``order`` 0, 1, 2 …) for ``enforce_ordering`` consumers.
    """

    def __init__(self, alias: str = DEFAULT_CHANNEL_LAYER, ordered: bool = False,
                 path: str = "/", headers: dict[str, Any] | None = None) -> None:
        super().__init__(alias)
        self._ordered = ordered
        self.order = 0
        self.path = path
        self._cookies: dict[str, str] = {}
        self._headers: dict[str, Any] = {}
        for name, value in (headers or {}).items():
            self.set_header(name, value)
        self._session: SessionBase | None = None
        self._session_cookie = True

    # -- cookies, headers, session --------------------------------------------------------------

    def set_cookie(self, key: str, value: str) -> None:
        self._cookies[key] = value

    def set_header(self, key: str, value: Any) -> None:
        """Add a header to every message; ``headers`` shows it under the name given, messages
        carry it lower-cased, as servers send header names."""
        if key.lower() == "cookie":
            raise ValueError("Use set_cookie() to set cookies, not set_header('cookie', ...)")
        self._headers[key] = value

    def get_cookies(self) -> dict[str, str]:
        cookies = dict(self._cookies)
        if self._session_cookie and apps.is_installed("django.contrib.sessions"):
            # A cookie the test set itself (a real login's) wins over the client's own session.
            cookies.setdefault(settings.SESSION_COOKIE_NAME, self.session.session_key)
        return cookies

    @property
    def headers(self) -> dict[str, Any]:
        """The headers of the next message: those set, and ``cookie`` (bytes, empty when there
        are no cookies), as in Channels 1.1."""
        headers = copy.deepcopy(self._headers)
        headers.setdefault("cookie", _cookie_header(self.get_cookies()))
        return headers

    @property
    def session(self) -> SessionBase:
        """The client's own session (saved, so its cookie points at a stored session).

        It starts as the session keyed by the client's reply channel, as in Channels 1.1, so
        values put here before connecting are also seen as ``message.channel_session``.
        """
        if self._session is None:
            session, exists = _load_channel_session(self.reply_channel)
            if not exists:
                session = _create_channel_session(self.reply_channel, session)
            self._session = session
        return self._session

    # -- sending --------------------------------------------------------------------------------

    def _tuple_headers(self) -> list[list[bytes]]:
        """``headers`` as ASGI pairs: lower-case byte names, byte values; no empty cookie."""
        pairs = []
        for name, value in self.headers.items():
            if name == "cookie" and not value:
                continue
            pairs.append([name.lower().encode("latin-1"),
                          value if isinstance(value, bytes) else str(value).encode("latin-1")])
        return pairs

    def _get_content(self, content: dict[str, Any] | None = None, text: Any = None,
                     path: str | None = None) -> dict[str, Any]:
        """The message ``send`` sends (Channels 1.1's name, for subclasses that override it):
        ``reply_channel``, ``path`` (its query string, if any, as ``query_string``),
        ``headers``, ``order`` when ordered, and ``text`` (JSON-encoded unless a str)."""
        content = copy.deepcopy(content or {})
        content.setdefault("reply_channel", self.reply_channel)
        path = path if path is not None else self.path
        path, question_mark, query_string = path.partition("?")
        content.setdefault("path", path)
        if question_mark:
            content.setdefault("query_string", query_string.encode("latin-1"))
        content.setdefault("headers", self._tuple_headers())
        if self._ordered:
            if "order" in content:
                raise ValueError("Do not set 'order' yourself on a WSClient(ordered=True)")
            content["order"] = self.order
            self.order += 1
        if text is None:
            text = content.get("text")
        if text is not None:
            content["text"] = text if isinstance(text, str) else json.dumps(text)
        return content

    def send(self, to: str, content: dict[str, Any] | None = None,  # type: ignore[override]
             text: Any = None, path: str | None = None) -> None:
        """Send a message to ``to``; ``text`` that is not a str is sent as JSON.

        Only ``websocket.connect`` carries the query string (always, ``b""`` when there is
        none); other messages get the path without it, as the server sends them.
        """
        path = path if path is not None else self.path
        if to != "websocket.connect":
            path = path.partition("?")[0]
        content = self._get_content(content, text, path)
        if to == "websocket.connect":
            content.setdefault("query_string", b"")
        self.channel_layer.send(to, content)
        self._session_cookie = False

    def send_and_consume(self, channel: str,  # type: ignore[override]
                         content: dict[str, Any] | None = None, text: Any = None,
                         path: str | None = None, fail_on_none: bool = True,
                         check_accept: bool = True) -> Any:
        self.send(channel, content, text, path)
        return self.consume(channel, fail_on_none=fail_on_none, check_accept=check_accept)

    def consume(self, channel: str, fail_on_none: bool = True,  # type: ignore[override]
                check_accept: bool = True) -> Any:
        """Like ``Client.consume``; after a connect it also takes the reply and fails unless
        the socket was accepted (pass ``check_accept=False`` to test refusals)."""
        result = super().consume(channel, fail_on_none=fail_on_none)
        if channel == "websocket.connect" and check_accept:
            reply = self.get_next_message(self.reply_channel)
            if reply is None or reply.content.get("accept") is not True:
                raise AssertionError(
                    f"Connection rejected: expected {{'accept': True}}, got "
                    f"{reply.content if reply else None}"
                )
        return result

    def receive(self, json: bool = True) -> Any:  # type: ignore[override]
        """The next message sent to this socket, None if there is none.

        A message with a ``text`` key gives its text, decoded from JSON when ``json=True`` and
        the text is a str; only a message without ``text`` (accept, close, bytes) gives the
        whole content.
        """
        content = super().receive()
        if content is None:
            return None
        if "text" not in content:
            return content
        text = content["text"]
        if json and isinstance(text, str):
            return _json_loads(text)
        return text

    # -- auth -------------------------------------------------------------------------------------

    def login(self, **credentials: Any) -> bool:
        """Log in through Django's ``authenticate``; the session cookie then carries the login."""
        from django.contrib.auth import authenticate

        user = authenticate(**credentials)
        if user is None or not getattr(user, "is_active", True):
            return False
        self._login(user)
        return True

    def force_login(self, user: Any, backend: str | None = None) -> None:
        if backend is None:
            backend = settings.AUTHENTICATION_BACKENDS[0]
        user.backend = backend
        self._login(user, backend)

    def _login(self, user: Any, backend: str | None = None) -> None:
        from django.contrib.auth import login

        request = HttpRequest()
        request.session = self.session if apps.is_installed("django.contrib.sessions") else (
            import_module(settings.SESSION_ENGINE).SessionStore()
        )
        login(request, user, backend)
        request.session.save()
        self._session = request.session
        # The next message (normally the connect) must carry the now logged-in session.
        self._session_cookie = True


def _json_loads(text: str) -> Any:
    return json.loads(text)
