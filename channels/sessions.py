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
    """The (loaded) session store of a socket, which may not exist in storage yet.

    Uses ``CHANNEL_SESSION_ENGINE`` if set (a socket's session often wants a faster store than
    the browser's), else ``SESSION_ENGINE``. A session that is not stored yet comes back with
    ``session_key`` None, as Django's stores report a missing session.
    """
    engine_path = getattr(settings, "CHANNEL_SESSION_ENGINE", None) or settings.SESSION_ENGINE
    engine = _session_engine(engine_path)
    session = engine.SessionStore(session_key=channel_session_key(reply_channel))
    # Touch the data so the store loads now and a missing row shows as session_key None.
    session.keys()
    return session


def _create_channel_session(reply_channel: str, session: SessionBase) -> SessionBase:
    """Store an empty session under the socket's key (another worker may be doing the same)."""
    session._session_key = channel_session_key(reply_channel)
    try:
        session.save(must_create=True)
    except CreateError:
        # Two messages of one socket raced to create it: the other won, so use its row.
        session = session_for_reply_channel(reply_channel)
        if session.session_key is None:
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
        session = session_for_reply_channel(reply_channel)
        if session.session_key is None:
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


def wait_channel_name(reply_channel: str) -> str:
    """The per-socket channel where its out-of-order messages wait.

    A single-reader (``?``) name keeps all of one socket's parked messages on one shard.
    """
    base, _, local = reply_channel.replace("?", "!").partition("!")
    name = f"__wait__.{base}?{local or '_'}"
    if len(name) > 100:
        name = "__wait__.h?" + hashlib.sha1(reply_channel.encode("utf-8")).hexdigest()
    return name


def _message_order(message: Message) -> int:
    order = message.get("order")
    if isinstance(order, bool) or not isinstance(order, int):
        if isinstance(order, str) and order.isdigit():
            return int(order)
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


class _Release:
    """A parked message on its way back to the channel it came from.

    It goes through the consumer's pending sends, so it leaves only after the replies of the
    message that released it (a released message cannot answer before its predecessor). It
    never raises: if the channel stays full, the socket is closed rather than left waiting
    for a message that will never come.
    """

    retry_time = 2.0
    retry_interval = 0.05

    def __init__(self, message: Message, channel_name: str) -> None:
        self.message = message
        self.channel_name = channel_name
        self.channel_layer = message.channel_layer

    def send(self, content: dict[str, Any], immediately: bool = False) -> None:
        deadline = time.monotonic() + self.retry_time
        while True:
            try:
                self.channel_layer.send(self.channel_name, content)
                return
            except self.channel_layer.ChannelFull:
                if time.monotonic() >= deadline:
                    break
                # No event says a worker drained the channel; a short pause is all there is.
                time.sleep(self.retry_interval)
        logger.error(
            "channel %s stayed full; could not release the waiting message %s of socket %s; "
            "closing the socket", self.channel_name, content.get("order"),
            self.message.reply_channel,
        )
        _close_socket(self.message, ORDERING_OVERFLOW_CLOSE_CODE)

    def __str__(self) -> str:
        return self.channel_name


def _release(message: Message, content: dict[str, Any], buffered: bool = True) -> None:
    content = dict(content)
    original_channel = content.pop("original_channel", None) or message.channel.name
    release = _Release(message, original_channel)
    if buffered and pending_message_store.active:
        pending_message_store.append(release, content)
    else:
        release.send(content)


def _drain_wait_channel(message: Message) -> list[dict[str, Any]]:
    wait_channel = wait_channel_name(message.reply_channel.name)
    parked = []
    while True:
        channel, content = message.channel_layer.receive([wait_channel], block=False)
        if channel is None:
            return parked
        parked.append(content)


def _park(message: Message, wait_channel: str, content: dict[str, Any]) -> bool:
    """Put a message on the socket's wait channel; False when the wait channel is full."""
    try:
        message.channel_layer.send(wait_channel, content)
    except message.channel_layer.ChannelFull:
        return False
    return True


def _abandon_ordering(message: Message) -> None:
    """The socket's wait buffer overflowed: close it and stop holding its messages back.

    Holding on would strand every later message (the original raised ChannelFull and the socket
    hung). Closing tells the client; letting the rest through lets ``websocket.disconnect`` run
    its clean-up (leaving groups) instead of waiting forever behind the lost message.
    """
    logger.warning(
        "too many out-of-order messages waiting for socket %s (wait channel full); closing it "
        "with code %s", message.reply_channel.name, ORDERING_OVERFLOW_CLOSE_CODE,
    )
    session = message.channel_session
    session[ORDERING_ABANDONED_KEY] = True
    session.save()
    session.modified = False
    _close_socket(message, ORDERING_OVERFLOW_CLOSE_CODE)
    for content in _drain_wait_channel(message):
        _release(message, content)


def _release_runnable(message: Message, slight: bool, buffered: bool = True) -> None:
    """Send back the parked messages that may run now; keep the others parked.

    Strict: only the one whose turn it is (its own run releases the next), so nothing bounces
    between the wait channel and the worker. Slight: everything, once connect has run.
    """
    parked = _drain_wait_channel(message)
    if not parked:
        return
    stored = session_for_reply_channel(message.reply_channel.name)
    next_order = stored.get(NEXT_ORDER_KEY, 0)
    abandoned = stored.get(ORDERING_ABANDONED_KEY, False)
    wait_channel = wait_channel_name(message.reply_channel.name)
    for content in parked:
        order = content.get("order")
        runnable = abandoned or (next_order >= 1 if slight else order == next_order)
        if runnable:
            _release(message, content, buffered)
        elif not _park(message, wait_channel, content):
            _abandon_ordering(message)
            return


def enforce_ordering(func: Consumer | None = None, slight: bool = False) -> Any:
    """Run a socket's messages in their ``order``, across any number of workers.

    Strict (default): message N runs only after N-1 finished. ``slight=True``: connect (order 0)
    runs before anything else of the socket; the rest run as they come.

    A message that is early waits on the socket's own wait channel (it does not go round the
    worker's channel again, which is what made the original spin into its retry limit); the
    message whose run makes it due sends it back after its own replies. Bounds: the wait
    channel's capacity (``channel_capacity`` pattern ``__wait__.*``) and the layer's expiry.
    When that buffer is full the socket is closed with 1013 and the rest of its messages are
    let through unordered, so disconnect still cleans up. A message whose order already ran
    is a duplicate and is dropped with a warning.
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
            runnable = (order == 0 or next_order >= 1) if slight else order == next_order
            if runnable:
                succeeded = False
                try:
                    result = consumer(*args, **kwargs)
                    succeeded = True
                    return result
                finally:
                    # A failed message still takes its turn, or the socket would stall on it.
                    # Saved before anything is released, so a released message finds its turn.
                    if slight:
                        session[NEXT_ORDER_KEY] = max(session.get(NEXT_ORDER_KEY, 0), 1)
                    else:
                        session[NEXT_ORDER_KEY] = order + 1
                    session.save()
                    session.modified = False
                    # After a failure the worker drops the pending sends, so release at once.
                    _release_runnable(message, slight, buffered=succeeded)
            if not slight and order < next_order:
                logger.warning(
                    "dropping message %s of socket %s: order %s already ran (duplicate?)",
                    message.channel.name, message.reply_channel.name, order,
                )
                return None
            wait_channel = wait_channel_name(message.reply_channel.name)
            content = dict(message.content)
            content["original_channel"] = message.channel.name
            if not _park(message, wait_channel, content):
                _abandon_ordering(message)
                return None
            # The message it waits for may have finished between our read of the session and
            # the park; that run released only what was parked then, so look again.
            stored = session_for_reply_channel(message.reply_channel.name)
            stored_next = stored.get(NEXT_ORDER_KEY, 0)
            if (stored_next >= 1) if slight else (stored_next == order):
                _release_runnable(message, slight)
            return None

        return inner

    if func is not None:
        return decorator(func)
    return decorator
