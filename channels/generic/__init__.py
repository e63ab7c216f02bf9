"""Class-based consumers: one class handles several channels, one method each."""

from channels.generic.base import BaseConsumer

__all__ = ["BaseConsumer"]
