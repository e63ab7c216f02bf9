"""HTTP through Django: request building, bodies, responses, cookies, uploads, CSRF, sessions."""

from __future__ import annotations

import json
import os
import re

import pytest

from channels.asgi import ChannelLayerWrapper
from channels.handler import AsgiHandler, AsgiRequest, ViewConsumer
from channels.layers.inmemory import InMemoryChannelLayer
from channels.message import Message
from channels.staticfiles import StaticFilesConsumer

REPLY = "http.response.TESTPROC!conn"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def urls(settings):
    settings.ROOT_URLCONF = "tests.core.handler_urls"
    settings.ALLOWED_HOSTS = ["testserver"]


@pytest.fixture(scope="module")
def handler():
    return AsgiHandler()


def request_message(path="/meta/", method="GET", headers=None, body=b"", **extra):
    content = {
        "reply_channel": REPLY, "http_version": "1.1", "method": method, "path": path,
        "query_string": b"", "root_path": "", "scheme": "http",
        "headers": [[b"host", b"testserver"], *(headers or [])], "body": body,
        "body_channel": None, "client": ["10.1.2.3", 54321], "server": ["10.0.0.1", 8000],
    }
    content.update(extra)
    return content


def run(handler, layer, **kwargs):
    return list(handler(Message(request_message(**kwargs), "http.request", layer)))


def body_of(replies):
    return b"".join(reply.get("content", b"") for reply in replies)


def header_values(reply, name):
    return [value for key, value in reply["headers"] if key == name]


def test_async_view_is_served(handler, layer):
    replies = run(handler, layer, path="/async/")
    assert replies[0]["status"] == 200
    assert json.loads(body_of(replies)) == {"async": True, "path": "/async/"}


def test_streaming_response_from_an_async_iterator(handler, layer):
    import warnings

    with warnings.catch_warnings():
        # Django says it consumes the async iterator to serve it synchronously: expected here.
        warnings.simplefilter("ignore")
        replies = run(handler, layer, path="/async-stream/")
    assert replies[0]["status"] == 200
    assert body_of(replies) == b"part0;part1;part2;"


def test_meta_carries_addresses_paths_and_headers(handler, layer):
    replies = run(handler, layer, path="/app/meta/", root_path="/app",
                  query_string=b"a=1&a=2&b=%C3%A9",
                  headers=[[b"x-multi", b"one"], [b"x-multi", b"two"], [b"user-agent", b"pytest"],
                           [b"content-type", b"text/plain; charset=utf-8"],
                           [b"content-length", b"0"]])
    assert len(replies) == 1 and replies[0]["status"] == 200
    data = json.loads(replies[0]["content"])
    assert data["meta"] == {
        "REQUEST_METHOD": "GET", "QUERY_STRING": "a=1&a=2&b=%C3%A9", "SCRIPT_NAME": "/app",
        "PATH_INFO": "/meta/", "REMOTE_ADDR": "10.1.2.3", "REMOTE_PORT": 54321,
        "SERVER_NAME": "10.0.0.1", "SERVER_PORT": "8000",
        "CONTENT_TYPE": "text/plain; charset=utf-8",
        "CONTENT_LENGTH": "0", "HTTP_X_MULTI": "one,two", "HTTP_USER_AGENT": "pytest",
        "HTTP_COOKIE": None,
    }
    assert data["path"] == "/app/meta/" and data["path_info"] == "/meta/"
    assert data["GET"] == {"a": ["1", "2"], "b": ["é"]}


def test_scheme_and_cookies_come_from_the_message(handler, layer):
    replies = run(handler, layer, scheme="https",
                  headers=[[b"cookie", b"a=1; b=2"], [b"cookie", b"c=3"]])
    data = json.loads(body_of(replies))
    assert data["scheme"] == "https"
    assert data["COOKIES"] == {"a": "1", "b": "2", "c": "3"}


def test_missing_server_gives_placeholders(layer):
    message = Message(request_message(server=None, client=None), "http.request", layer)
    request = AsgiRequest(message)
    assert request.META["SERVER_NAME"] == "unknown" and request.META["SERVER_PORT"] == "0"
    assert "REMOTE_ADDR" not in request.META


def test_urlencoded_post_body(handler, layer):
    body = b"name=value&name=other&x=%E2%9C%93"
    replies = run(handler, layer, path="/post/", method="POST", body=body, headers=[
        [b"content-type", b"application/x-www-form-urlencoded"],
        [b"content-length", str(len(body)).encode()]])
    data = json.loads(body_of(replies))
    assert data["POST"] == {"name": ["value", "other"], "x": ["✓"]}
    assert data["body_length"] == len(body)


def test_body_channel_chunks_are_appended(handler, layer):
    body_channel = layer.new_channel("http.request.body?")
    layer.send(body_channel, {"content": b"-middle-", "more_content": True})
    layer.send(body_channel, {"content": b"end", "more_content": False})
    replies = run(handler, layer, path="/raw/", method="POST", body=b"start",
                  body_channel=body_channel)
    assert json.loads(body_of(replies)) == {
        "length": 16, "head": "start-midd", "tail": "middle-end"}


def test_body_channel_closed_means_no_response(handler, layer):
    body_channel = layer.new_channel("http.request.body?")
    layer.send(body_channel, {"content": b"part", "more_content": True})
    layer.send(body_channel, {"closed": True})
    assert run(handler, layer, path="/raw/", method="POST", body_channel=body_channel) == []


def test_body_that_never_arrives_is_408(handler, monkeypatch):
    wrapper = ChannelLayerWrapper(InMemoryChannelLayer(blocking_timeout=0.05), "default", [])
    monkeypatch.setattr(AsgiRequest, "body_receive_timeout", 0.2)
    body_channel = wrapper.new_channel("http.request.body?")
    replies = run(handler, wrapper, path="/raw/", method="POST", body_channel=body_channel)
    assert replies[0]["status"] == 408
    assert body_of(replies) == b"408 Request Timeout (upload too slow)"


def test_multipart_upload(handler, layer):
    boundary = b"----channelsboundary"
    body = (
        b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nmy file\r\n"
        b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"upload\"; "
        b"filename=\"notes.txt\"\r\nContent-Type: text/plain\r\n\r\nfile contents here\r\n"
        b"--" + boundary + b"--\r\n"
    )
    # Sent the way a chunked upload arrives: no Content-Length, body split over a body channel.
    body_channel = layer.new_channel("http.request.body?")
    layer.send(body_channel, {"content": body[40:], "more_content": False})
    replies = run(handler, layer, path="/post/", method="POST", body=body[:40],
                  body_channel=body_channel,
                  headers=[[b"content-type", b"multipart/form-data; boundary=" + boundary]])
    data = json.loads(body_of(replies))
    assert data["POST"] == {"title": ["my file"]}
    assert data["FILES"] == {"upload": ["notes.txt", 18, "file contents here"]}


def test_body_over_data_upload_max_memory_size_is_400(handler, layer, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = b"a=" + b"x" * 2000
    replies = run(handler, layer, path="/raw/", method="POST", body=body, headers=[
        [b"content-type", b"application/x-www-form-urlencoded"]])
    assert replies[0]["status"] == 400


def test_large_response_is_split_into_512k_messages(handler, layer):
    replies = run(handler, layer, path="/big/")
    assert [len(reply["content"]) for reply in replies] == [512 * 1024, 512 * 1024, 100]
    assert [reply["more_content"] for reply in replies] == [True, True, False]
    assert replies[0]["status"] == 200 and "status" not in replies[1]
    assert header_values(replies[0], b"content-type") == [b"application/octet-stream"]


def test_empty_response_is_one_message(handler, layer):
    replies = run(handler, layer, path="/empty/")
    assert len(replies) == 1
    assert (replies[0]["status"], replies[0]["content"], replies[0]["more_content"]) == (
        204, b"", False)


def test_streaming_response_sends_parts_as_they_come(handler, layer):
    replies = run(handler, layer, path="/stream/")
    assert replies[0]["status"] == 200
    assert [reply.get("content") for reply in replies] == [b"one", b"two", b"three", None]
    assert [reply["more_content"] for reply in replies] == [True, True, True, False]


def test_empty_streaming_response_still_sends_status(handler, layer):
    assert run(handler, layer, path="/empty-stream/") == [
        {"status": 204, "headers": [[b"content-type", b"text/html; charset=utf-8"]],
         "content": b"", "more_content": False}]


def test_file_response_chunks_stay_under_the_limit(handler, layer):
    replies = run(handler, layer, path="/file/")
    assert [len(reply["content"]) for reply in replies] == [512 * 1024, 512 * 1024, 176 * 1024]
    assert [reply["more_content"] for reply in replies] == [True, True, False]
    assert replies[0]["status"] == 200 and "status" not in replies[1]


def test_small_file_response_is_one_message(handler, layer, settings):
    settings.STATICFILES_DIRS = [os.path.join(os.path.dirname(__file__), "project", "static")]
    replies = list(StaticFilesConsumer().handler(
        Message(request_message(path="/static/core-test.css"), "http.request", layer)))
    assert len(replies) == 1
    assert replies[0]["more_content"] is False and replies[0]["status"] == 200


def test_empty_file_response_still_sends_status(handler, layer, settings, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    settings.STATICFILES_DIRS = [str(tmp_path)]
    replies = list(StaticFilesConsumer().handler(
        Message(request_message(path="/static/empty.txt"), "http.request", layer)))
    assert [(reply["status"], reply["content"], reply["more_content"]) for reply in replies] == [
        (200, b"", False)]


def test_each_cookie_gets_its_own_set_cookie_header(handler, layer):
    replies = run(handler, layer, path="/cookies/")
    cookies = header_values(replies[0], b"set-cookie")
    assert len(cookies) == 2
    assert cookies[0].startswith(b"first=1;") and b"Path=/" in cookies[0]
    assert cookies[1].startswith(b"second=2;") and b"HttpOnly" in cookies[1]


def test_response_later_sends_nothing(handler, layer):
    assert run(handler, layer, path="/later/") == []


def test_view_exception_is_a_500(handler, layer):
    replies = run(handler, layer, path="/error/")
    assert replies[0]["status"] == 500


def test_unknown_path_is_404(handler, layer):
    assert run(handler, layer, path="/nowhere/")[0]["status"] == 404


def test_malformed_message_is_400(handler, layer):
    message = request_message()
    del message["method"]
    replies = list(handler(Message(message, "http.request", layer)))
    assert replies[0]["status"] == 400


def test_csrf_protection_through_normal_middleware(handler, layer):
    first = run(handler, layer, path="/form/")
    token = body_of(first).decode()
    cookie = header_values(first[0], b"set-cookie")[0].split(b";")[0]
    form = b"field=hello&csrfmiddlewaretoken=" + token.encode()
    headers = [[b"content-type", b"application/x-www-form-urlencoded"], [b"cookie", cookie]]
    refused = run(handler, layer, path="/form/", method="POST", body=b"field=hello",
                  headers=headers)
    assert refused[0]["status"] == 403
    accepted = run(handler, layer, path="/form/", method="POST", body=form, headers=headers)
    assert accepted[0]["status"] == 200 and body_of(accepted) == b"posted hello"


def test_sessions_through_normal_middleware(handler, layer):
    first = run(handler, layer, path="/counter/")
    assert json.loads(body_of(first)) == {"count": 1}
    cookie = header_values(first[0], b"set-cookie")[0].split(b";")[0]
    assert cookie.startswith(b"sessionid=")
    second = run(handler, layer, path="/counter/", headers=[[b"cookie", cookie]])
    assert json.loads(body_of(second)) == {"count": 2}


def test_view_consumer_sends_replies_on_the_reply_channel(layer):
    ViewConsumer()(Message(request_message(path="/big/"), "http.request", layer))
    received = [layer.receive(["http.response.TESTPROC!"]) for _ in range(4)]
    assert [channel for channel, _ in received] == [REPLY, REPLY, REPLY, None]


def test_view_consumer_gives_up_on_a_reply_channel_that_stays_full(layer, monkeypatch, caplog):
    layer.channel_layer.capacity = 1
    consumer = ViewConsumer()
    monkeypatch.setattr(consumer, "send_retry_time", 0.1)
    consumer(Message(request_message(path="/big/"), "http.request", layer))
    assert "stayed full" in caplog.text
    # Exactly the first message went out; the rest were abandoned rather than blocking forever.
    assert layer.receive(["http.response.TESTPROC!"])[1]["status"] == 200
    assert layer.receive(["http.response.TESTPROC!"]) == (None, None)


def receive_response(layer):
    replies = []
    while not replies or replies[-1]["more_content"]:
        channel, reply = layer.receive(["http.response.TESTPROC!"])
        assert channel == REPLY
        replies.append(reply)
    return replies


def test_static_files_consumer_serves_and_falls_through(layer, settings):
    settings.STATICFILES_DIRS = [os.path.join(os.path.dirname(__file__), "project", "static")]
    consumer = StaticFilesConsumer()
    consumer(Message(request_message(path="/static/core-test.css"), "http.request", layer))
    replies = receive_response(layer)
    assert replies[0]["status"] == 200 and body_of(replies) == b"body { color: teal; }\n"
    assert re.match(rb"text/css", header_values(replies[0], b"content-type")[0])
    consumer(Message(request_message(path="/static/missing.css"), "http.request", layer))
    assert receive_response(layer)[0]["status"] == 404
    consumer(Message(request_message(path="/meta/"), "http.request", layer))
    assert receive_response(layer)[0]["status"] == 200
