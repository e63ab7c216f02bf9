"""The server retries a send that failed with ``LayerUnavailable`` only when nothing was written.

A send that timed out after it went out may have reached the layer (``maybe_written``): sending
it again could run a request's view twice, so it is answered (503) instead of retried.
"""

from __future__ import annotations

import asyncio

import pytest

from channels.layers.base import LayerUnavailable
from channels.server.http_protocol import _retrying


def flaky(maybe_written: bool):
    calls: list[int] = []

    async def send(message: dict) -> str:
        calls.append(message["n"])
        if len(calls) == 1:
            exc = LayerUnavailable("stopped answering")
            exc.maybe_written = maybe_written
            raise exc
        return "sent"

    return send, calls


def test_a_send_that_wrote_nothing_is_retried():
    send, calls = flaky(maybe_written=False)
    assert asyncio.run(_retrying(send, {"n": 1})) == "sent"
    assert calls == [1, 1]


def test_a_send_that_may_have_been_written_is_not_sent_again():
    send, calls = flaky(maybe_written=True)
    with pytest.raises(LayerUnavailable) as err:
        asyncio.run(_retrying(send, {"n": 1}))
    assert err.value.maybe_written
    assert calls == [1]
