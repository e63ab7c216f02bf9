"""The interface server: HTTP/1.1 and WebSocket on Twisted + Autobahn, talking to a layer."""

from channels.server.server import Server

__all__ = ["Server"]
