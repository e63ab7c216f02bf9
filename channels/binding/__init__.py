"""Data binding: keep clients' copies of model instances in step with the database, and let
clients change them (Channels 1.1's ``channels.binding``)."""

from channels.binding.base import Binding

__all__ = ["Binding"]
