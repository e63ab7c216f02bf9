"""Bindings for WebSocket clients: JSON events on a multiplexer stream, requests from it.

Events go to groups as ``{"stream": stream, "payload": {"action", "pk", "data", "model"}}``;
requests arrive (through a ``WebsocketDemultiplexer``) as ``{"action", "pk", "data"}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.core import serializers
from django.core.exceptions import ValidationError
from django.core.serializers.base import DeserializationError, DeserializedObject
from django.core.serializers.json import DjangoJSONEncoder

from channels.auth import channel_session_user_from_http
from channels.binding.base import Binding, BindingError
from channels.generic.websockets import WebsocketMultiplexer
from channels.message import Message
from channels.sessions import enforce_ordering


def _ignore(message: Message, **kwargs: Any) -> None:
    """Connect and disconnect reach every stream of a demultiplexer; a binding has nothing to
    do with them."""


class WebsocketBinding(Binding):
    """A binding speaking JSON over a multiplexed WebSocket.

    Define ``model``, ``stream``, ``fields`` (or ``exclude``), ``group_names(cls, instance)``
    and ``has_permission(self, user, action, pk)``; put ``consumer`` in a
    ``WebsocketDemultiplexer``'s ``consumers`` under the stream name.
    """

    model = None  # abstract

    stream: str | None = None
    #: On connect, bring the browser's login into the channel session (as the consumers do).
    http_user: bool = False
    #: Order the socket's messages; only when routed directly (a demultiplexer orders its own).
    strict_ordering: bool = False
    slight_ordering: bool = False

    # -- outbound -------------------------------------------------------------------------------

    @classmethod
    def encode(cls, stream: str, payload: dict[str, Any]) -> dict[str, Any]:
        return WebsocketMultiplexer.encode(stream, payload)

    def serialize(self, instance: Any, action: str) -> dict[str, Any]:
        return {
            "action": action,
            "pk": instance.pk,
            "data": self.serialize_data(instance),
            "model": self.model_label,
        }

    def serialize_data(self, instance: Any) -> dict[str, Any]:
        """The instance's fields (as ``fields``/``exclude`` allow) in JSON-safe types."""
        text = serializers.serialize("json", [instance], fields=self.serialized_field_names())
        return json.loads(text)[0]["fields"]

    def serialized_field_names(self) -> list[str] | None:
        """Names for Django's serializer; None means every field."""
        if self.fields is not None:
            if self.fields == "__all__" or list(self.fields) == ["__all__"]:
                return None
            return list(self.fields)
        excluded = set(self.exclude)
        return [field.name for field in self.model._meta.get_fields()
                if field.name not in excluded]

    # -- inbound --------------------------------------------------------------------------------

    @classmethod
    def consumer(cls, message: Message, **kwargs: Any) -> None:
        channel = message.channel.name
        handler: Callable[..., Any]
        if channel == "websocket.receive":
            handler = cls.get_handler()
        elif channel == "websocket.connect" and cls.http_user:
            handler = channel_session_user_from_http(_ignore)
        else:
            handler = _ignore  # no session to open for a message that changes nothing
        if "multiplexer" not in kwargs:
            # Routed directly: connect and disconnect must pass through the ordering too, or
            # the socket's order counter would never move past them.
            if cls.strict_ordering:
                handler = enforce_ordering(handler, slight=False)
            elif cls.slight_ordering:
                handler = enforce_ordering(handler, slight=True)
        handler(message, **kwargs)

    @classmethod
    def trigger_inbound(cls, message: Message, **kwargs: Any) -> None:
        if message.channel.name != "websocket.receive":
            return
        super().trigger_inbound(message, **kwargs)

    def deserialize(self, message: Message) -> tuple[Any, Any, Any]:
        text = message.get("text")
        if not isinstance(text, str):
            raise BindingError("invalid_json", "requests must be JSON text frames")
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise BindingError("invalid_json", f"the request is not JSON: {exc}")
        if not isinstance(body, dict):
            raise BindingError("invalid_request",
                               'a request is a JSON object {"action", "pk", "data"}')
        return body.get("action"), body.get("pk"), body.get("data")

    def create(self, data: dict[str, Any]) -> None:
        hydrated = self._hydrate(None, self.writable_data(data))
        instance = hydrated.object
        instance.full_clean()
        instance.save()
        self._save_m2m(instance, hydrated)

    def update(self, pk: Any, data: dict[str, Any]) -> None:
        """Copy the allowed fields of ``data`` onto the stored instance, then ``save()``."""
        instance = self.model._default_manager.get(pk=pk)
        writable = self.writable_data(data)
        hydrated = self._hydrate(pk, writable)
        meta = self.model._meta
        for name in writable:
            field = meta.get_field(name)
            if not field.many_to_many:
                setattr(instance, field.attname, getattr(hydrated.object, field.attname))
        instance.full_clean()
        instance.save()
        self._save_m2m(instance, hydrated)

    def writable_field_names(self) -> set[str]:
        """Fields a client may set: the bound ones that a form could edit, never the pk."""
        meta = self.model._meta
        editable = {field.name for field in meta.get_fields()
                    if (field.concrete or field.many_to_many) and field.editable
                    and not field.primary_key and not field.auto_created}
        named = self.serialized_field_names()
        if named is None:
            return editable
        return editable & set(named)

    def writable_data(self, data: dict[str, Any]) -> dict[str, Any]:
        """The part of ``data`` a client may write; names the model lacks are refused, bound
        names it may not write are dropped (as Channels 1.1 did)."""
        known = {field.name for field in self.model._meta.get_fields()}
        unknown = sorted(str(name) for name in data if name not in known)
        if unknown:
            raise BindingError("invalid_data", f"unknown field(s): {', '.join(unknown)}",
                               {name: ["no such field"] for name in unknown})
        allowed = self.writable_field_names()
        return {name: value for name, value in data.items() if name in allowed}

    def _hydrate(self, pk: Any, data: dict[str, Any]) -> DeserializedObject:
        """An unsaved instance built by Django's deserializer (types, foreign keys, m2m)."""
        try:
            return self._deserialize_one(pk, data)
        except DeserializationError:
            pass
        # Which fields failed: the deserializer's own error does not name them.
        errors = {}
        for name, value in data.items():
            try:
                self._deserialize_one(pk, {name: value})
            except DeserializationError as exc:
                cause = exc.__cause__ or exc.__context__
                if isinstance(cause, ValidationError):
                    errors[name] = [str(message) for message in cause.messages]
                else:
                    errors[name] = [str(cause or exc)]
        detail = "; ".join(f"{name}: {' '.join(texts)}" for name, texts in errors.items())
        raise BindingError("invalid_data", detail or "the data could not be read", errors)

    def _deserialize_one(self, pk: Any, data: dict[str, Any]) -> DeserializedObject:
        node = {"model": self.model_label, "pk": pk, "fields": data}
        return next(iter(serializers.deserialize("python", [node])))

    @staticmethod
    def _save_m2m(instance: Any, hydrated: DeserializedObject) -> None:
        for name, values in (hydrated.m2m_data or {}).items():
            getattr(instance, name).set(values)


class WebsocketBindingWithMembers(WebsocketBinding):
    """Also sends attributes, properties and methods of the instance.

    ``send_members = ["name", "owner.username", "get_total"]``: dotted paths are followed,
    callables are called without arguments, and each lands in ``data`` under its path with
    ``__`` for ``.`` (``owner__username``), encoded as Django's JSON encoder does.
    """

    model = None  # abstract

    send_members: list[str] = []
    encoder = DjangoJSONEncoder()

    def serialize_data(self, instance: Any) -> dict[str, Any]:
        data = super().serialize_data(instance)
        members = {}
        for path in self.send_members:
            member = instance
            for attribute in path.split("."):
                member = getattr(member, attribute)
            if callable(member):
                member = member()
            members[path.replace(".", "__")] = member
        data.update(json.loads(self.encoder.encode(members)))
        return data
