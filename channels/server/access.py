"""The access log: one NCSA-style line per HTTP response and per WebSocket event."""

from __future__ import annotations

import datetime
from typing import Any, TextIO


class AccessLogGenerator:
    """An ``action_logger`` for :class:`channels.server.Server` that writes to a stream.

    Lines look like ``127.0.0.1:52100 - - [27/Nov/2026:02:15:26] "GET /path?q=1" 200 13 0.004``:
    the common log format that log tools already parse, plus the duration in seconds at the end
    because slow responses are what people read access logs for.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, protocol: Any, action: str, details: dict[str, Any]) -> None:
        if action == "complete":
            self.write_entry(
                host=details.get("client"),
                request=f"{details['method']} {details['path']}",
                status=details.get("status"),
                length=details.get("size"),
                duration=details.get("time_taken"),
            )
        elif action in _WEBSOCKET_ACTIONS:
            self.write_entry(
                host=details.get("client"),
                request=f"{_WEBSOCKET_ACTIONS[action]} {details['path']}",
                duration=details.get("time_taken"),
            )

    def write_entry(
        self,
        host: str | None,
        request: str,
        status: int | None = None,
        length: int | None = None,
        duration: float | None = None,
    ) -> None:
        date = datetime.datetime.now().strftime("%d/%b/%Y:%H:%M:%S")
        line = (
            f'{host or "-"} - - [{date}] "{request}" {status if status is not None else "-"} '
            f'{length if length is not None else "-"}'
        )
        if duration is not None:
            line += f" {duration:.3f}"
        self.stream.write(line + "\n")
        self.stream.flush()


_WEBSOCKET_ACTIONS = {
    "connecting": "WSCONNECTING",
    "connected": "WSCONNECT",
    "rejected": "WSREJECT",
    "disconnected": "WSDISCONNECT",
}
