"""HTTP through Django: ``http.request`` messages in, Django views run, ``http.response`` out.

Everything between the message and the response is Django's own machinery (middleware, URL
resolution, exception handling, ``DATA_UPLOAD_MAX_MEMORY_SIZE``, multipart parsing); this module
only translates the ASGI 1 message to a request and the response to reply messages.
"""

from __future__ import annotations

import codecs
import io
import logging
import tempfile
import time
import traceback
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django import http
from django.conf import settings
from django.core import signals
from django.core.handlers import base
from django.http import FileResponse, HttpResponse, HttpResponseServerError
from django.urls import set_script_prefix
from django.utils.functional import cached_property

from channels.exceptions import RequestAborted, RequestTimeout, ResponseLater
from channels.pending import pending_message_store

if TYPE_CHECKING:
    # Only a type here: routing imports this module for its default HTTP consumer, and a
    # Message reaches the layer registry, which builds routers.
    from channels.message import Message

logger = logging.getLogger("channels.handler")

try:  # Django >= 4.2 name; the older one was removed in 5.x.
    from django.utils.http import parse_header_parameters
except ImportError:  # pragma: no cover
    from django.http.multipartparser import parse_header as parse_header_parameters


class AsgiRequest(http.HttpRequest):
    """A Django request built from an ``http.request`` message (and its body channel).

    The body is collected before the view runs (the worker is synchronous anyway); chunks from
    a body channel go to a spooled temporary file, so a large upload goes to disk instead of
    worker memory, and Django's size checks see its real length even without Content-Length.
    """

    ResponseLater = ResponseLater
    body_receive_timeout = 60

    def __init__(self, message: Message) -> None:
        self.message = message
        self.reply_channel = message.reply_channel
        self._read_started = False
        self.resolver_match = None
        path = message["path"]
        if isinstance(path, bytes):
            path = path.decode("utf-8")
        self.path = path
        self.script_name = message.get("root_path") or ""
        if self.script_name and path.startswith(self.script_name):
            self.path_info = path[len(self.script_name) :] or "/"
        else:
            self.path_info = path
        self.method = message["method"].upper()
        query_string = message.get("query_string") or b""
        if isinstance(query_string, str):
            query_string = query_string.encode("latin-1")
        self._raw_query_string = query_string
        self.META = self._build_meta(message, query_string)
        self._set_content_type_params(self.META)
        self._stream = self._collect_body(message)
        self._stream_size = self._stream.seek(0, 2)
        self._stream.seek(0)
        if self._stream_size and "CONTENT_LENGTH" not in self.META:
            # A chunked upload has no Content-Length; Django's parsers need one.
            self.META["CONTENT_LENGTH"] = str(self._stream_size)

    def _build_meta(self, message: Message, query_string: bytes) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "REQUEST_METHOD": self.method,
            # WSGI carries bytes as latin-1 text (PEP 3333); Django re-encodes it the same way.
            "QUERY_STRING": query_string.decode("latin-1"),
            "SCRIPT_NAME": self.script_name,
            "PATH_INFO": self.path_info,
            "SERVER_PROTOCOL": "HTTP/" + str(message.get("http_version") or "1.1"),
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
        }
        client = message.get("client")
        if client:
            meta["REMOTE_ADDR"] = client[0]
            meta["REMOTE_HOST"] = client[0]
            meta["REMOTE_PORT"] = client[1]
        server = message.get("server")
        if server:
            meta["SERVER_NAME"] = server[0]
            meta["SERVER_PORT"] = str(server[1])
        else:
            meta["SERVER_NAME"] = "unknown"
            meta["SERVER_PORT"] = "0"
        headers = message.get("headers") or []
        if isinstance(headers, dict):  # legacy form: {name: value}
            headers = list(headers.items())
        for name, value in headers:
            name = name.decode("latin-1") if isinstance(name, bytes) else name
            value = value.decode("latin-1") if isinstance(value, bytes) else value
            name = name.lower()
            if name == "content-length":
                key = "CONTENT_LENGTH"
            elif name == "content-type":
                key = "CONTENT_TYPE"
            else:
                key = "HTTP_" + name.upper().replace("-", "_")
            if key in meta:
                # Repeated headers are one comma-joined value in WSGI; cookies join with "; ".
                separator = "; " if key == "HTTP_COOKIE" else ","
                value = f"{meta[key]}{separator}{value}"
            meta[key] = value
        return meta

    def _set_content_type_params(self, meta: dict[str, Any]) -> None:
        self.content_type, self.content_params = parse_header_parameters(
            meta.get("CONTENT_TYPE", "")
        )
        if "charset" in self.content_params:
            try:
                codecs.lookup(self.content_params["charset"])
            except LookupError:
                pass
            else:
                self.encoding = self.content_params["charset"]

    def _collect_body(self, message: Message) -> Any:
        body = message.get("body") or b""
        if not isinstance(body, bytes):
            raise TypeError(f"http.request body must be bytes, not {type(body).__name__}")
        body_channel = message.get("body_channel")
        if not body_channel:
            # Already in memory as one message: a file would only copy it.
            return io.BytesIO(body)
        body_file = tempfile.SpooledTemporaryFile(
            max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, mode="w+b"
        )
        body_file.write(body)
        deadline = time.monotonic() + self.body_receive_timeout
        layer = message.channel_layer
        try:
            while True:
                if time.monotonic() >= deadline:
                    raise RequestTimeout()
                _, chunk = layer.receive([body_channel], block=True)
                if chunk is None:
                    continue  # the layer's bounded wait ended; check the deadline again
                if chunk.get("closed"):
                    raise RequestAborted()
                content = chunk.get("content") or b""
                body_file.write(content)
                if not chunk.get("more_content"):
                    return body_file
        except BaseException:
            body_file.close()
            raise

    def _get_scheme(self) -> str:
        return self.message.get("scheme") or "http"

    @cached_property
    def GET(self) -> http.QueryDict:  # noqa: N802 - Django's name
        return http.QueryDict(self._raw_query_string, encoding=self._encoding)

    def _get_post(self) -> http.QueryDict:
        if not hasattr(self, "_post"):
            self._load_post_and_files()
        return self._post

    def _set_post(self, post: http.QueryDict) -> None:
        self._post = post

    POST = property(_get_post, _set_post)

    @property
    def FILES(self) -> Any:  # noqa: N802 - Django's name
        if not hasattr(self, "_files"):
            self._load_post_and_files()
        return self._files

    @cached_property
    def COOKIES(self) -> dict[str, str]:  # noqa: N802 - Django's name
        return http.parse_cookie(self.META.get("HTTP_COOKIE", ""))

    def close(self) -> None:
        super().close()
        self._stream.close()


class AsgiHandler(base.BaseHandler):
    """Runs a message through Django and yields the ``http.response`` messages to send."""

    request_class = AsgiRequest
    # Body bytes per reply message: well under the layer's 1 MB message limit.
    chunk_size = 512 * 1024

    def __init__(self) -> None:
        super().__init__()
        self.load_middleware()

    def __call__(self, message: Message) -> Iterator[dict[str, Any]]:
        set_script_prefix(settings.FORCE_SCRIPT_NAME or message.get("root_path") or "")
        signals.request_started.send(sender=self.__class__, environ={}, message=message)
        try:
            request = self.request_class(message)
        except UnicodeDecodeError:
            logger.warning("Bad request (undecodable data) on %s", message.get("path"),
                           exc_info=True)
            response: http.HttpResponseBase = http.HttpResponseBadRequest()
        except RequestTimeout:
            response = HttpResponse("408 Request Timeout (upload too slow)", status=408)
        except RequestAborted:
            # The client is gone: nobody to answer.
            signals.request_finished.send(sender=self.__class__)
            return
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            logger.warning("Malformed http.request message: %s", exc)
            response = http.HttpResponseBadRequest()
        else:
            response = self._get_response_safely(request)
            if getattr(response, "channels_response_later", False):
                response._handler_class = self.__class__
                response.close()
                return
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
        response._handler_class = self.__class__
        try:
            yield from self.encode_response(response)
        finally:
            response.close()  # also fires request_finished, as Django's own handlers do

    def _get_response_safely(self, request: AsgiRequest) -> http.HttpResponseBase:
        """Django turns view errors into responses; this covers Django's handling failing too."""
        try:
            return self.get_response(request)
        except Exception:
            logger.exception("Django's exception handling failed for %s", request.path)
            body = traceback.format_exc() if settings.DEBUG else "Internal Server Error"
            return HttpResponseServerError(body, content_type="text/plain")

    def process_exception_by_middleware(self, exception: Exception,
                                        request: http.HttpRequest) -> Any:
        if isinstance(exception, ResponseLater):
            # Middleware response hooks still run (sessions are saved), but nothing is sent.
            response = HttpResponse(status=200)
            response.channels_response_later = True
            return response
        return super().process_exception_by_middleware(exception, request)

    @classmethod
    def encode_response(cls, response: http.HttpResponseBase) -> Iterator[dict[str, Any]]:
        """Turn a response into reply messages: status and headers first, then body chunks."""
        headers = [
            [name.lower().encode("ascii"), value.encode("latin-1")]
            for name, value in response.items()
        ]
        # One header per cookie: they cannot be comma-joined (RFC 6265 §3).
        for cookie in response.cookies.values():
            headers.append([b"set-cookie", cookie.output(header="").strip().encode("latin-1")])
        head = {"status": response.status_code, "headers": headers}
        if isinstance(response, FileResponse):
            yield from cls._encode_file(response, head)
            return
        if response.streaming:
            # Each part goes out as soon as the view yields it (server-sent events, long polls
            # rely on that), so the end is a separate message. Iterating the response itself,
            # as Django's WSGI handler does, also serves an async iterator (Django consumes it
            # synchronously, with its warning); streaming_content would hand that one out raw.
            sent_head = False
            for part in response:
                if not part and sent_head:
                    continue
                for chunk, _ in cls.chunk_bytes(part):
                    message = {"content": chunk, "more_content": True}
                    if not sent_head:
                        message.update(head)
                        sent_head = True
                    yield message
            final: dict[str, Any] = {"more_content": False}
            if not sent_head:
                final.update(head, content=b"")
            yield final
            return
        first = True
        for chunk, last in cls.chunk_bytes(response.content):
            message = {"content": chunk, "more_content": not last}
            if first:
                message.update(head)
                first = False
            yield message

    @classmethod
    def _encode_file(cls, response: FileResponse,
                     head: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """A file is finite and nobody waits on its parts: holding one chunk back lets the
        last one carry ``more_content: False``, saving a message (a small file is one)."""
        held: dict[str, Any] | None = None
        for part in response:
            for chunk, _ in cls.chunk_bytes(part):
                if not chunk:
                    continue
                if held is not None:
                    yield held
                held = {"content": chunk, "more_content": True}
                if head:
                    held.update(head)
                    head = {}
        if held is None:
            yield {**head, "content": b"", "more_content": False}
        else:
            held["more_content"] = False
            yield held

    @classmethod
    def chunk_bytes(cls, data: bytes) -> Iterator[tuple[bytes, bool]]:
        """``(chunk, is_last)`` pieces of at most ``chunk_size``; empty data is one empty piece."""
        if not data:
            yield data, True
            return
        position = 0
        while position < len(data):
            yield data[position : position + cls.chunk_size], (
                position + cls.chunk_size >= len(data)
            )
            position += cls.chunk_size


class ViewConsumer:
    """The consumer for ``http.request``: Django views, with replies sent as they are made.

    A full reply channel means the interface server is not reading; retries back off and give up
    after ``send_retry_time`` seconds (logged) instead of blocking the worker forever.
    """

    handler_class = AsgiHandler
    # The handler sends Django's request_started/finished itself (the worker need not).
    sends_request_signals = True
    send_retry_time = 10.0
    send_retry_pauses = (0.005, 0.1)

    def __init__(self) -> None:
        self.handler = self.handler_class()

    def __call__(self, message: Message, **kwargs: Any) -> None:
        if message.reply_channel is None:
            logger.error("http.request without a reply_channel on %s; dropped it",
                         message.get("path"))
            return
        replies = self.handler(message)
        last = None
        try:
            for reply in replies:
                if not reply.get("more_content") and pending_message_store.active:
                    last = reply  # held until the handler has finished (below)
                elif not self._send(message, reply):
                    return
        except BaseException:
            # The handler failed after the response was complete (a request_finished receiver,
            # a response's close()): send it, as it would have been sent before the failure.
            if last is not None:
                self._send(message, last)
            raise
        finally:
            replies.close()
        if last is not None:
            # The last part goes out when the consumer returns, with the same retry on a full
            # channel: a worker sends it in one round trip with its next receive. Earlier parts
            # of a stream went at once, as they were made.
            pending_message_store.append(message.reply_channel, last,
                                         retry_time=self.send_retry_time)

    def _send(self, message: Message, reply: dict[str, Any]) -> bool:
        reply_channel = message.reply_channel
        full_error = reply_channel.channel_layer.ChannelFull
        deadline = time.monotonic() + self.send_retry_time
        pause, max_pause = self.send_retry_pauses
        while True:
            try:
                reply_channel.send(reply, immediately=True)
                return True
            except full_error:
                if time.monotonic() >= deadline:
                    logger.error("Reply channel %s stayed full for %.0fs; abandoned the response "
                                 "to %s", reply_channel, self.send_retry_time, message.get("path"))
                    return False
                time.sleep(pause)  # no event says "the server drained it": back off and retry
                pause = min(pause * 2, max_pause)
