"""Django sessions for consumers: one per socket (``channel_session``), the browser's own
(``http_session``), and per-socket message ordering built on the first (``enforce_ordering``).

A socket has no cookie jar of its own, so its session is keyed by its reply channel: every
message of one socket carries the same reply channel and so finds the same session, whichever
worker handles it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Callable
from importlib import import_module
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings
from django.contrib.sessions.backends.base import CreateError, SessionBase
from django.http.cookie import parse_cookie

from channels.message import Message, pending_message_store

logger = logging.getLogger("channels.sessions")

Consumer = Callable[..., Any]

#: Session key holding the next ``order`` a strictly ordered socket may run.
NEXT_ORDER_KEY = "__channels_next_order"
#: Session key set once ordering of a socket was given up (its wait buffer overflowed).
ORDERING_ABANDONED_KEY = "__channels_ordering_abandoned"
#: Close code sent when a socket's out-of-order buffer overflows (RFC 6455 §7.4.1 "try again
#: later"): the client may reconnect, but this socket's message order can no longer be kept.
ORDERING_OVERFLOW_CLOSE_CODE = 1013


# --------------------------------------------------------------------------------------------
# Session stores
# --------------------------------------------------------------------------------------------


def _session_engine(setting_value: str) -> Any:
    engine = import_module(setting_value)
    store_class = engine.SessionStore
    from django.contrib.sessions.backends.signed_cookies import SessionStore as CookieStore

    if issubclass(store_class, CookieStore):
        raise ValueError(
            f"The session engine {setting_value!r} keeps sessions in the browser's cookie; a "
            "channel session has no cookie to live in. Set CHANNEL_SESSION_ENGINE (or "
            "SESSION_ENGINE) to a server-side engine such as "
            "'django.contrib.sessions.backends.db' or '...cache'."
        )
    return engine


def channel_session_key(reply_channel: str) -> str:
    """The session key of a socket: stable for its reply channel, 32 characters like Django's."""
    digest = hashlib.sha1(reply_channel.encode("utf-8")).hexdigest()
    return "chn" + digest[:29]


def session_for_reply_channel(reply_channel: str) -> SessionBase:
    """The (loaded) session store of a socket, keyed by its reply channel.

    Uses ``CHANNEL_SESSION_ENGINE`` if set (a socket's session often wants a faster store than
    the browser's), else ``SESSION_ENGINE``. As in Channels 1.1 the store always carries the
    socket's key, even before anything is stored, so code outside consumers (a view changing a
    socket's session) reads and writes the socket's own session, never a fresh random one;
    saving one that was never stored raises Django's ``UpdateError``.
    """
    return _load_channel_session(reply_channel)[0]


def _load_channel_session(reply_channel: str) -> tuple[SessionBase, bool]:
    """The socket's session store and whether it exists in storage already."""
    engine_path = getattr(settings, "CHANNEL_SESSION_ENGINE", None) or settings.SESSION_ENGINE
    engine = _session_engine(engine_path)
    session_key = channel_session_key(reply_channel)
    session = engine.SessionStore(session_key=session_key)
    # Loading now tells us whether it is stored: Django's stores drop the key of a missing
    # session (they would invent a random one on save), so it is put back afterwards.
    session.keys()
    exists = session.session_key is not None
    session._session_key = session_key
    return session, exists


def _create_channel_session(reply_channel: str, session: SessionBase) -> SessionBase:
    """Store an empty session under the socket's key (another worker may be doing the same)."""
    session._session_key = channel_session_key(reply_channel)
    try:
        session.save(must_create=True)
    except CreateError:
        # Two messages of one socket raced to create it: the other won, so use its row.
        session, exists = _load_channel_session(reply_channel)
        if not exists:
            raise ValueError(
                f"Could neither create nor load the channel session of {reply_channel!r}"
            ) from None
    return session


def _find_message(args: tuple[Any, ...], decorator: str) -> Message:
    """The Message among the first two positional args (functions and methods alike)."""
    for arg in args[:2]:
        if isinstance(arg, Message):
            return arg
    raise ValueError(f"{decorator} called without a Message instance as first or second argument")


def _save_if_modified(session: SessionBase | None) -> None:
    if session is not None and session.modified and not session.is_empty():
        session.save()


def channel_session(func: Consumer) -> Consumer:
    """Give the consumer ``message.channel_session``, a session shared by all messages of the
    socket, created on first use and saved after the consumer if it changed."""

    @functools.wraps(func)
    def inner(*args: Any, **kwargs: Any) -> Any:
        message = _find_message(args, "channel_session")
        if getattr(message, "channel_session", None) is not None:
            # Another decorator on the same call already opened it: one load, one save.
            result = func(*args, **kwargs)
            _save_if_modified(message.channel_session)
            return result
        if message.reply_channel is None:
            raise ValueError(
                f"channel_session needs a message with a reply_channel; the message on "
                f"{message.channel.name!r} has none"
            )
        reply_channel = message.reply_channel.name
        session, exists = _load_channel_session(reply_channel)
        if not exists:
            session = _create_channel_session(reply_channel, session)
        message.channel_session = session
        result = func(*args, **kwargs)
        _save_if_modified(session)
        return result

    return inner


# --------------------------------------------------------------------------------------------
# HTTP sessions
# --------------------------------------------------------------------------------------------


def header_values(headers: Any, name: bytes) -> list[str]:
    """Values of one header from ASGI ``[[name, value], ...]`` (or a legacy dict), latin-1."""
    if isinstance(headers, dict):
        pairs = list(headers.items())
    else:
        pairs = list(headers or [])
    values = []
    for pair in pairs:
        try:
            header_name, value = pair
        except (TypeError, ValueError):
            raise ValueError(f"Malformed header entry in message: {pair!r}") from None
        if isinstance(header_name, str):
            header_name = header_name.encode("latin-1")
        if header_name.lower() != name:
            continue
        values.append(value.decode("latin-1") if isinstance(value, bytes) else str(value))
    return values


def http_session_key(message: Message) -> str | None:
    """The browser's session key: ``?session_key=`` first (clients that cannot send cookies
    on a WebSocket), then the session cookie."""
    query_string = message.get("query_string") or b""
    if isinstance(query_string, bytes):
        try:
            query_string = query_string.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"query_string is not UTF-8: {query_string!r}") from None
    if query_string:
        keys = parse_qs(query_string).get("session_key")
        if keys and keys[0]:
            return keys[0]
    cookie_header = "; ".join(header_values(message.get("headers"), b"cookie"))
    if cookie_header:
        return parse_cookie(cookie_header).get(settings.SESSION_COOKIE_NAME) or None
    return None


def http_session_for_key(session_key: str | None) -> SessionBase | None:
    if not session_key:
        return None
    engine = import_module(settings.SESSION_ENGINE)
    return engine.SessionStore(session_key=session_key)


def http_session(func: Consumer) -> Consumer:
    """Give the consumer ``message.http_session``: the browser's Django session, found through
    the connect (or request) message's cookie, or None. It is never created here, since the
    browser would never learn the new key."""

    @functools.wraps(func)
    def inner(*args: Any, **kwargs: Any) -> Any:
        message = _find_message(args, "http_session")
        if hasattr(message, "http_session"):
            result = func(*args, **kwargs)
            _save_if_modified(message.http_session)
            return result
        message.http_session = http_session_for_key(http_session_key(message))
        result = func(*args, **kwargs)
        # Read back from the message: channel_and_http_session may have filled it in.
        _save_if_modified(message.http_session)
        return result

    return inner


def channel_and_http_session(func: Consumer) -> Consumer:
    """Both sessions; the HTTP session stays reachable on later messages of the socket, which
    carry no cookies, through its key remembered in the channel session."""

    @channel_session
    @http_session
    @functools.wraps(func)
    def inner(*args: Any, **kwargs: Any) -> Any:
        message = _find_message(args, "channel_and_http_session")
        cookie_name = settings.SESSION_COOKIE_NAME
        if message.http_session is not None and message.http_session.session_key:
            if message.channel_session.get(cookie_name) != message.http_session.session_key:
                message.channel_session[cookie_name] = message.http_session.session_key
        elif message.http_session is None and cookie_name in message.channel_session:
            message.http_session = http_session_for_key(message.channel_session[cookie_name])
        return func(*args, **kwargs)

    return inner


# --------------------------------------------------------------------------------------------
# Ordering
# --------------------------------------------------------------------------------------------

#: How far ahead of the socket's next expected message a message may be and still wait for
#: its turn (setting ``CHANNELS_ORDERING_MAX_WAITING``); beyond it the socket is closed.
DEFAULT_MAX_WAITING = 100


def _max_waiting() -> int:
    return int(getattr(settings, "CHANNELS_ORDERING_MAX_WAITING", DEFAULT_MAX_WAITING))


def wait_channel_name(reply_channel: str, order: int | None = None) -> str:
    """The channel where a socket's early message waits: one per order for strict ordering
    (so releasing the next message is one receive, whatever else waits), one per socket for
    slight ordering (everything waits for the same connect).

    Single-reader (``?``) names keep a socket's waiting messages on one shard.
    """
    base, _, local = reply_channel.replace("?", "!").partition("!")
    stem = "__wait__." if order is None else f"__wait__.{order}."
    name = f"{stem}{base}?{local or '_'}"
    if len(name) > 100:
        name = f"{stem}h?" + hashlib.sha1(reply_channel.encode("utf-8")).hexdigest()
    return name


def _message_order(message: Message) -> int:
    order = message.get("order")
    if isinstance(order, str) and order.isdigit():
        return int(order)
    if isinstance(order, bool) or not isinstance(order, int) or order < 0:
        raise ValueError(
            f"enforce_ordering needs a message with an integer 'order' key; the message on "
            f"{message.channel.name!r} has order={order!r}"
        )
    return order


def _close_socket(message: Message, code: int) -> None:
    if message.reply_channel is not None:
        try:
            message.reply_channel.send({"close": code}, immediately=True)
        except Exception:
            logger.exception("could not close socket %s", message.reply_channel.name)


def _release(message: Message, content: dict[str, Any]) -> None:
    """Send a waiting message back to the channel it came from.

    Never raises: if that channel stays full, the socket is closed rather than left waiting
    for a message that will never come.
    """
    content = dict(content)
    channel = content.pop("original_channel", None) or message.channel.name
    layer = message.channel_layer
    deadline = time.monotonic() + 2.0
    while True:
        try:
            layer.send(channel, content)
            return
        except layer.ChannelFull:
            if time.monotonic() >= deadline:
                break
            # No event says a worker drained the channel; a short pause is all there is.
            time.sleep(0.05)
    logger.error("channel %s stayed full; could not release message %s of socket %s; closing it",
                 channel, content.get("order"), message.reply_channel)
    _close_socket(message, ORDERING_OVERFLOW_CLOSE_CODE)


def _take_waiting(message: Message, wait_channels: list[str]) -> list[dict[str, Any]]:
    """Every message waiting on these channels (non-blocking)."""
    taken = []
    while True:
        channel, content = message.channel_layer.receive(wait_channels, block=False)
        if channel is None:
            return taken
        taken.append(content)


def _park(message: Message, order: int, slight: bool) -> bool:
    """Put a message on its wait channel; False when the wait channel is full."""
    content = dict(message.content)
    content["original_channel"] = message.channel.name
    wait_channel = wait_channel_name(message.reply_channel.name, None if slight else order)
    try:
        message.channel_layer.send(wait_channel, content)
    except message.channel_layer.ChannelFull:
        return False
    return True


def _stored_state(reply_channel: str) -> tuple[int, bool]:
    """The socket's next order and abandoned flag as stored now (not as this worker read them
    when its message started)."""
    stored = session_for_reply_channel(reply_channel)
    return stored.get(NEXT_ORDER_KEY, 0), bool(stored.get(ORDERING_ABANDONED_KEY))


def _release_due(message: Message, slight: bool, next_order: int, abandoned: bool) -> None:
    reply_channel = message.reply_channel.name
    if abandoned:
        channels = [wait_channel_name(reply_channel)] + [
            wait_channel_name(reply_channel, order)
            for order in range(next_order, next_order + _max_waiting() + 1)
        ]
    elif slight:
        channels = [wait_channel_name(reply_channel)] if next_order >= 1 else []
    else:
        channels = [wait_channel_name(reply_channel, next_order)]
    if channels:
        for content in _take_waiting(message, channels):
            _release(message, content)


def requeue_messages(message: Message) -> None:
    """Send every message of this socket that waits for its turn back to its own channel.

    The Channels 1.1 helper of the same name, for code that drives ordering itself. Messages
    still not due simply wait again when they are handled, so nothing is lost or run early.
    """
    if message.reply_channel is None:
        raise ValueError("requeue_messages needs a message with a reply_channel")
    session = getattr(message, "channel_session", None)
    if session is not None:
        next_order = session.get(NEXT_ORDER_KEY, 0)
    else:
        next_order = _stored_state(message.reply_channel.name)[0]
    _release_due(message, False, next_order, True)


def _abandon_ordering(message: Message, order: int) -> None:
    """Too many early messages: close the socket and stop holding its messages back.

    Holding on would strand every later message (the original raised ChannelFull and the socket
    hung). Closing tells the client; letting ``websocket.disconnect`` through lets it clean up
    (leave groups) instead of waiting forever behind a message that may never come.
    """
    logger.warning(
        "message %s of socket %s is too far ahead of its turn (more than %s waiting); closing "
        "the socket with code %s", order, message.reply_channel.name, _max_waiting(),
        ORDERING_OVERFLOW_CLOSE_CODE,
    )
    # Written on a fresh copy: this worker's copy was read before the message started, and
    # saving it would also write back an order that another worker may have moved on since.
    stored = session_for_reply_channel(message.reply_channel.name)
    stored[ORDERING_ABANDONED_KEY] = True
    stored.save()
    message.channel_session[ORDERING_ABANDONED_KEY] = True
    message.channel_session.modified = False
    _close_socket(message, ORDERING_OVERFLOW_CLOSE_CODE)
    _release_due(message, False, stored.get(NEXT_ORDER_KEY, 0), True)


class _Advance:
    """Moves a socket's order past a message that ran, then releases the message now due.

    Queued as the last pending send of the consumer, so it happens after the message's own
    replies went out: the next message cannot answer before this one.
    """

    def __init__(self, message: Message, order: int, slight: bool) -> None:
        self.message = message
        self.order = order
        self.slight = slight
        self.channel_layer = message.channel_layer

    def send(self, content: dict[str, Any], immediately: bool = False) -> None:
        session = self.message.channel_session
        if self.slight:
            next_order = max(session.get(NEXT_ORDER_KEY, 0), 1)
        else:
            next_order = max(session.get(NEXT_ORDER_KEY, 0), self.order + 1)
        session[NEXT_ORDER_KEY] = next_order
        # Saved before looking for waiting messages: one that parks after our look sees it.
        session.save()
        session.modified = False
        _release_due(self.message, self.slight, next_order, False)

    def __str__(self) -> str:
        return f"order of {self.message.reply_channel}"


def enforce_ordering(func: Consumer | None = None, slight: bool = False) -> Any:
    """Run a socket's messages in their ``order``, across any number of workers.

    Strict (default): message N runs only after N-1 finished. ``slight=True``: connect (order 0)
    runs before anything else of the socket; the rest run as they come.

    An early message waits on a wait channel of its own socket (it does not go round the
    worker's channel again, which is what made the original spin into its retry limit). When a
    message has run and its replies are out, the order advances and the one message now due
    goes back to its channel: one receive, nothing re-queued. Bounds: a message more than
    ``CHANNELS_ORDERING_MAX_WAITING`` (100) ahead of its turn, or a full wait channel, closes
    the socket with 1013, after which only its ``websocket.disconnect`` still runs (so clean-up
    happens); waiting messages expire with the layer's ``expiry``. A message whose order
    already ran is a duplicate and is dropped with a warning.
    """

    def decorator(consumer: Consumer) -> Consumer:
        @channel_session
        @functools.wraps(consumer)
        def inner(*args: Any, **kwargs: Any) -> Any:
            message = _find_message(args, "enforce_ordering")
            order = _message_order(message)
            session = message.channel_session
            if session.get(ORDERING_ABANDONED_KEY):
                if message.channel.name == "websocket.disconnect":
                    return consumer(*args, **kwargs)
                logger.info("dropping message %s of closed socket %s", order,
                            message.reply_channel.name)
                return None
            next_order = session.get(NEXT_ORDER_KEY, 0)
            if (order == 0 or next_order >= 1) if slight else order == next_order:
                return _run_in_turn(consumer, args, kwargs, message, order, slight)
            if not slight and order < next_order:
                logger.warning(
                    "dropping message %s of socket %s: order %s already ran (duplicate?)",
                    message.channel.name, message.reply_channel.name, order,
                )
                return None
            if (not slight and order - next_order > _max_waiting()) or not _park(
                    message, order, slight):
                _abandon_ordering(message, order)
                return None
            # The message it waits for may have finished between our read of the session and
            # the park; that run looked for waiting messages before ours arrived, so look again.
            stored_next, abandoned = _stored_state(message.reply_channel.name)
            due = (stored_next >= 1) if slight else (stored_next == order)
            if due or abandoned:
                _release_due(message, slight, stored_next, abandoned)
            return None

        return inner

    if func is not None:
        return decorator(func)
    return decorator


def _run_in_turn(consumer: Consumer, args: tuple[Any, ...], kwargs: dict[str, Any],
                 message: Message, order: int, slight: bool) -> Any:
    try:
        result = consumer(*args, **kwargs)
    except BaseException:
        # A failed message still takes its turn, or the socket would stall on it; the worker
        # drops its pending sends, so advance right now.
        _Advance(message, order, slight).send({})
        raise
    advance = _Advance(message, order, slight)
    if pending_message_store.active:
        pending_message_store.append(advance, {})
    else:
        advance.send({})
    return result
