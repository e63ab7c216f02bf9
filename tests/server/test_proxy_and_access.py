"""The two small pure modules: proxy-header parsing and the access-log format."""

from __future__ import annotations

import io
import re

from channels.server.access import AccessLogGenerator
from channels.server.proxy import forwarded_client

CLIENT = ["127.0.0.1", 5000]


def test_no_forwarded_for_keeps_the_socket_address():
    headers = [(b"x-forwarded-proto", b"https"), (b"x-forwarded-port", b"443")]
    assert forwarded_client(headers, CLIENT, "http") == (CLIENT, "http")


def test_leftmost_address_port_and_scheme():
    headers = [(b"x-forwarded-for", b" 10.0.0.1 , 10.0.0.2"), (b"x-forwarded-port", b"8443"),
               (b"x-forwarded-proto", b"HTTPS")]
    assert forwarded_client(headers, CLIENT, "http") == (["10.0.0.1", 8443], "https")


def test_bad_or_out_of_range_port_becomes_zero():
    for port in (b"abc", b"-1", b"70000"):
        headers = [(b"x-forwarded-for", b"10.0.0.1"), (b"x-forwarded-port", port)]
        assert forwarded_client(headers, CLIENT, "http") == (["10.0.0.1", 0], "http")


def test_empty_forwarded_for_is_ignored():
    assert forwarded_client([(b"x-forwarded-for", b"")], CLIENT, "http") == (CLIENT, "http")


def test_access_log_formats():
    stream = io.StringIO()
    log = AccessLogGenerator(stream)
    log(None, "complete", {"path": "/a?b=1", "status": 200, "method": "GET",
                           "client": "1.2.3.4:5", "time_taken": 0.25, "size": 12})
    log(None, "connected", {"path": "/ws", "client": None, "time_taken": 0.01})
    log(None, "rejected", {"path": "/ws", "client": "1.2.3.4:6"})
    log(None, "unknown-action", {"path": "/x"})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert re.fullmatch(r'1\.2\.3\.4:5 - - \[[^]]+\] "GET /a\?b=1" 200 12 0\.250', lines[0])
    assert re.fullmatch(r'- - - \[[^]]+\] "WSCONNECT /ws" - - 0\.010', lines[1])
    assert re.fullmatch(r'1\.2\.3\.4:6 - - \[[^]]+\] "WSREJECT /ws" - -', lines[2])
