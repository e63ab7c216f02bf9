"""``message.user`` for consumers, from the socket's channel session or the browser's session.

Django's ``auth.get_user`` only needs an object with a ``session``; a socket has no request,
so a minimal stand-in carries the session there.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib import auth
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.base import SessionBase

from channels.sessions import (
    _find_message,
    channel_and_http_session,
    channel_session,
    http_session,
)

Consumer = Callable[..., Any]


class _SessionHolder:
    """What ``auth.get_user`` reads from a request: just its session."""

    def __init__(self, session: SessionBase) -> None:
        self.session = session


def user_for_session(session: SessionBase | None) -> Any:
    """The user logged in to ``session``, or an ``AnonymousUser``."""
    if session is None:
        return AnonymousUser()
    return auth.get_user(_SessionHolder(session))


def transfer_user(from_session: SessionBase, to_session: SessionBase) -> None:
    """Copy a login from one session to another (HTTP session → socket's channel session).

    Only a complete login (user id, backend and the password hash check) is copied; half of one
    would make ``get_user`` log the user out, or worse, skip the hash check.
    """
    keys = (auth.BACKEND_SESSION_KEY, auth.SESSION_KEY, auth.HASH_SESSION_KEY)
    if all(key in from_session for key in keys):
        for key in keys:
            to_session[key] = from_session[key]


def channel_session_user(func: Consumer) -> Consumer:
    """``message.user`` from the socket's channel session (implies ``channel_session``)."""

    @channel_session
    @functools.wraps(func)
    def inner(*args: Any, **kwargs: Any) -> Any:
        message = _find_message(args, "channel_session_user")
        message.user = user_for_session(message.channel_session)
        return func(*args, **kwargs)

    return inner


def http_session_user(func: Consumer) -> Consumer:
    """``message.user`` from the browser's session cookie (implies ``http_session``)."""

    @http_session
    @functools.wraps(func)
    def inner(*args: Any, **kwargs: Any) -> Any:
        message = _find_message(args, "http_session_user")
        message.user = user_for_session(message.http_session)
        return func(*args, **kwargs)

    return inner


def channel_session_user_from_http(func: Consumer) -> Consumer:
    """For ``websocket.connect``: take the user from the browser's session and keep it in the
    socket's channel session, where ``channel_session_user`` finds it on later messages."""

    @http_session_user
    @channel_session
    @functools.wraps(func)
    def inner(*args: Any, **kwargs: Any) -> Any:
        message = _find_message(args, "channel_session_user_from_http")
        if message.http_session is not None:
            transfer_user(message.http_session, message.channel_session)
        return func(*args, **kwargs)

    return inner


def channel_and_http_session_user_from_http(func: Consumer) -> Consumer:
    """Like ``channel_session_user_from_http``, keeping the HTTP session reachable later."""

    @http_session_user
    @channel_and_http_session
    @functools.wraps(func)
    def inner(*args: Any, **kwargs: Any) -> Any:
        message = _find_message(args, "channel_and_http_session_user_from_http")
        if message.http_session is not None:
            transfer_user(message.http_session, message.channel_session)
        return func(*args, **kwargs)

    return inner
