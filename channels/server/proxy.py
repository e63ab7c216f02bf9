"""Client address and scheme from ``X-Forwarded-*`` headers, for servers behind a proxy.

Only consulted when ``--proxy-headers`` is on: anyone can send these headers, so trusting them
without a proxy in front would let a client choose the address it is logged and rate-limited as.
"""

from __future__ import annotations

from collections.abc import Iterable

Address = list  # [host: str, port: int]


def _first_value(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for header_name, value in headers:
        if header_name == name:
            return value.decode("latin-1").strip()
    return None


def forwarded_client(
    headers: Iterable[tuple[bytes, bytes]],
    client: Address | None,
    scheme: str,
) -> tuple[Address | None, str]:
    """Apply ``X-Forwarded-For``/``-Port``/``-Proto`` to the socket's view of the client.

    ``headers`` are lower-cased ``(name, value)`` byte pairs. The left-most ``X-Forwarded-For``
    address is the original client (each proxy appends). Port and scheme are only believed
    together with an address header, so a lone ``X-Forwarded-Proto`` cannot fake ``https``.
    A non-numeric port falls back to 0 rather than failing the request.
    """
    headers = list(headers)
    address = _first_value(headers, b"x-forwarded-for")
    if not address:
        return client, scheme
    host = address.split(",")[0].strip()
    port_text = _first_value(headers, b"x-forwarded-port")
    try:
        port = int(port_text) if port_text else 0
    except ValueError:
        port = 0
    if not 0 <= port <= 65535:
        port = 0
    proto = _first_value(headers, b"x-forwarded-proto")
    if proto:
        scheme = proto.split(",")[0].strip().lower() or scheme
    return [host, port], scheme
