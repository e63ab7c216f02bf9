"""What the binding tests share: bindings made per test, and sockets that listen to groups."""

from __future__ import annotations

import json
from typing import Any

from channels.binding.websockets import WebsocketBinding
from channels.test import Client
from tests.binding.bindapp.models import IntegerValue


class BindingTestMixin:
    """For ``ChannelTestCase`` / ``TransactionChannelTestCase`` classes."""

    def bind(self, base: type = WebsocketBinding, groups: Any = None, **attrs: Any) -> type:
        """A binding on ``IntegerValue`` (stream "test") for this test only. ``groups`` is a
        function of the instance, or a list of group names for every instance."""
        if groups is None:
            groups = ["test-all"]
        if callable(groups):
            group_names = classmethod(lambda cls, instance: groups(instance))
        else:
            group_names = classmethod(lambda cls, instance: list(groups))
        attrs = {"model": IntegerValue, "stream": "test", "group_names": group_names,
                 "has_permission": lambda self, user, action, pk: True, **attrs}
        if "fields" not in attrs and "exclude" not in attrs:
            attrs["fields"] = ["name", "value", "room"]
        binding = type("TestBinding", (base,), attrs)
        self.addCleanup(binding.unregister)  # type: ignore[attr-defined]
        return binding

    def listener(self, *groups: str) -> Client:
        """A socket (reply channel) in the given groups."""
        client = Client()
        for group in groups:
            client.join_group(group)
        return client

    def frames(self, client: Client) -> list[Any]:
        """Everything sent to the socket so far, decoded from the multiplexer's JSON."""
        found = []
        while (content := client.receive()) is not None:
            found.append(json.loads(content["text"]))
        return found
