"""Small helpers shared by the worker, routing and commands."""

from __future__ import annotations

import types
from typing import Any


def name_that_thing(thing: Any) -> str:
    """A readable dotted name for a consumer, for log lines and error messages."""
    if isinstance(thing, types.MethodType):
        owner = thing.__self__
        owner_name = owner.__name__ if isinstance(owner, type) else type(owner).__name__
        return f"{thing.__module__}.{owner_name}.{thing.__func__.__name__}"
    if hasattr(thing, "__qualname__") and hasattr(thing, "__module__"):
        return f"{thing.__module__}.{thing.__qualname__}"
    if hasattr(thing, "__class__"):
        return f"{type(thing).__module__}.{type(thing).__qualname__}"
    return repr(thing)
