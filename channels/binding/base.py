"""Data binding: model changes broadcast to groups, and client requests applied to models.

A binding class ties one model to a stream. Outbound, the model's save and delete signals turn
every change into ``create`` / ``update`` / ``delete`` events for the groups the instance
left, stayed in or joined, sent once the transaction commits. Inbound, ``consumer`` applies a
client's request to the model when ``has_permission`` agrees; a request it cannot apply is
answered with an error frame on the same stream, and the worker carries on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.apps import apps
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.core.serializers.base import DeserializationError
from django.db import IntegrityError, router
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

from channels import DEFAULT_CHANNEL_LAYER
from channels.binding.delivery import request_atomic, send_after_commit
from channels.exceptions import ChannelSocketException, ConsumeLater, DenyConnection
from channels.message import Message

logger = logging.getLogger("channels.binding")

CREATE = "create"
UPDATE = "update"
DELETE = "delete"
ACTIONS = (CREATE, UPDATE, DELETE)

# Where pre_save/pre_delete leave the groups an instance was in, for the post_ signal to diff.
# On the instance, keyed by binding class: two threads never share an instance's save.
_OLD_GROUPS = "_binding_group_names"

_RECEIVERS = (
    (pre_save, "pre_save_receiver"),
    (post_save, "post_save_receiver"),
    (pre_delete, "pre_delete_receiver"),
    (post_delete, "post_delete_receiver"),
)


class BindingError(Exception):
    """A client request a binding refuses; the client gets it as an error frame.

    ``code`` is one of ``invalid_json``, ``invalid_request``, ``unknown_action``,
    ``missing_pk``, ``invalid_data``, ``not_found``, ``permission_denied``,
    ``internal_error``; ``errors`` maps field names to messages when validation says which.
    Raise it from your own hooks (``create``, ``update``, ...) to refuse with your own words.
    """

    def __init__(self, code: str, detail: str,
                 errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.errors = errors

    def as_payload(self, action: Any, pk: Any) -> dict[str, Any]:
        """The stream payload. The request's action and pk are nested under ``request`` so a
        client that switches on ``payload.action`` never takes an error for an event."""
        payload: dict[str, Any] = {
            "error": self.code,
            "detail": self.detail,
            "request": {"action": action, "pk": pk},
        }
        if self.errors:
            payload["errors"] = self.errors
        return payload


class BindingMetaclass(type):
    """Records every binding class, so the app can connect them once models are loaded.

    Until ``register_all()`` runs (from the ``channels`` app's ``ready()``) a model given as
    ``"app_label.Model"`` cannot be resolved; from then on, classes register as they are made.
    """

    register_immediately: bool = False
    binding_classes: list[type] = []

    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any],
                **kwargs: Any) -> BindingMetaclass:
        cls = super().__new__(mcs, name, bases, namespace, **kwargs)
        if any(isinstance(base, BindingMetaclass) for base in bases):
            mcs.binding_classes.append(cls)
            if mcs.register_immediately:
                try:
                    cls.register()  # type: ignore[attr-defined]
                except Exception:
                    # Refused (no fields, no stream...): a later register_all must not trip
                    # over it again.
                    mcs.binding_classes.remove(cls)
                    raise
        return cls

    @classmethod
    def register_all(mcs) -> None:
        mcs.register_immediately = True
        for binding_class in list(mcs.binding_classes):
            binding_class.register()  # type: ignore[attr-defined]


def _field_errors(error: ValidationError) -> tuple[str, dict[str, list[str]] | None]:
    if hasattr(error, "error_dict"):
        errors = {field: [str(message) for message in messages]
                  for field, messages in error.message_dict.items()}
        return "; ".join(f"{field}: {' '.join(texts)}" for field, texts in errors.items()), errors
    return " ".join(str(message) for message in error.messages), None


class Binding(metaclass=BindingMetaclass):
    """Two-way binding between one model and one stream.

    Outbound needs ``group_names(instance)``, ``serialize(instance, action)`` and
    ``encode(stream, payload)``; inbound needs ``deserialize(message)``, ``has_permission``,
    ``create`` and ``update`` (``WebsocketBinding`` provides all but ``group_names`` and
    ``has_permission``). ``model = None`` on a class marks it abstract.
    """

    #: The model class, or ``"app_label.ModelName"`` (resolved at registration).
    model: Any = None
    #: The multiplexer stream events go out on and requests come in on.
    stream: str | None = None
    #: Fields sent and accepted: a list, or ``"__all__"`` / ``["__all__"]``. Or use ``exclude``.
    fields: Any = None
    exclude: Any = None
    #: Decorators for inbound messages (``message.user`` comes from the channel session).
    channel_session_user: bool = True
    channel_session: bool = False
    #: The channel layer alias events are sent on.
    channel_layer_alias: str = DEFAULT_CHANNEL_LAYER
    #: The keyword arguments of the signal being handled (``created``, ``using``, ...).
    signal_kwargs: dict[str, Any] | None = None
    model_label: str = ""
    #: The database alias of the change being sent (the transaction to wait for).
    using: str | None = None

    # -- registration ---------------------------------------------------------------------------

    @classmethod
    def register(cls) -> None:
        """Check the class and connect the model's save/delete signals to it."""
        for model in cls.get_registered_models():
            for signal, receiver in _RECEIVERS:
                signal.connect(getattr(cls, receiver), sender=model)

    @classmethod
    def unregister(cls) -> None:
        """Disconnect the signals again (tests define bindings that must not outlive them)."""
        if isinstance(cls.model, type):
            for signal, receiver in _RECEIVERS:
                signal.disconnect(getattr(cls, receiver), sender=cls.model)
        if cls in BindingMetaclass.binding_classes:
            BindingMetaclass.binding_classes.remove(cls)

    @classmethod
    def get_registered_models(cls) -> list[type]:
        """The model to connect, resolved from a string if needed ([] for abstract classes)."""
        if cls.model is None:
            if "model" in cls.__dict__:
                return []
            raise ValueError(f"Binding {cls.__qualname__} must set model (a model class or "
                             "'app_label.ModelName'), or model = None to be abstract")
        if cls.fields is None and cls.exclude is None:
            raise ValueError(f"Binding {cls.__qualname__} must set fields (a list of names or "
                             "'__all__') or exclude (a list of names)")
        for option in ("fields", "exclude"):
            value = getattr(cls, option)
            if isinstance(value, str) and value != "__all__":
                raise ValueError(f"Binding {cls.__qualname__}.{option} must be a list of field "
                                 f"names, not the string {value!r}")
        if not cls.stream:
            raise ValueError(f"Binding {cls.__qualname__} must set stream (the multiplexer "
                             "stream name its events go out on)")
        if isinstance(cls.model, str):
            cls.model = apps.get_model(cls.model)
        meta = cls.model._meta
        cls.model_label = f"{meta.app_label}.{meta.object_name}".lower()
        return [cls.model]

    # -- outbound -------------------------------------------------------------------------------

    @classmethod
    def group_names(cls, instance: Any) -> Iterable[str]:
        """The groups that should hear about ``instance`` as it is now."""
        raise NotImplementedError(f"{cls.__qualname__} must define group_names(cls, instance)")

    def serialize(self, instance: Any, action: str) -> dict[str, Any]:
        """The event payload for ``instance``; ``{}`` sends nothing."""
        raise NotImplementedError(f"{type(self).__qualname__} must define serialize()")

    @classmethod
    def encode(cls, stream: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The message sent to groups (and to a socket for an error) for a payload."""
        raise NotImplementedError(f"{cls.__qualname__} must define encode(stream, payload)")

    @classmethod
    def pre_save_receiver(cls, instance: Any, **kwargs: Any) -> None:
        cls.pre_change_receiver(instance, CREATE if instance._state.adding else UPDATE,
                                **kwargs)

    @classmethod
    def post_save_receiver(cls, instance: Any, created: bool, **kwargs: Any) -> None:
        cls.post_change_receiver(instance, CREATE if created else UPDATE, created=created,
                                 **kwargs)

    @classmethod
    def pre_delete_receiver(cls, instance: Any, **kwargs: Any) -> None:
        cls.pre_change_receiver(instance, DELETE, **kwargs)

    @classmethod
    def post_delete_receiver(cls, instance: Any, **kwargs: Any) -> None:
        cls.post_change_receiver(instance, DELETE, **kwargs)

    @classmethod
    def pre_change_receiver(cls, instance: Any, action: str, **kwargs: Any) -> None:
        """Remember the groups the instance is in before the change.

        For a save they come from the stored row: the instance in hand already carries the new
        values, so asking it would make a move between groups look like staying put.
        """
        if action == DELETE:
            before = instance
        else:
            before = cls.stored_instance(instance, kwargs.get("using"))
        group_names = cls._group_set(before) if before is not None else set()
        old_groups = instance.__dict__.setdefault(_OLD_GROUPS, {})
        old_groups[cls] = group_names

    @classmethod
    def _group_set(cls, instance: Any) -> set[str]:
        names = cls.group_names(instance)
        # A lone name, not its characters: an easy slip that would send to groups "a", "b"...
        return {names} if isinstance(names, str) else set(names)

    @classmethod
    def stored_instance(cls, instance: Any, using: str | None) -> Any:
        """The row as the database has it now (inside this transaction), or None if new."""
        if instance.pk is None:
            return None
        manager = type(instance)._base_manager.using(using or router.db_for_write(cls.model))
        return manager.filter(pk=instance.pk).first()

    @classmethod
    def post_change_receiver(cls, instance: Any, action: str, **kwargs: Any) -> None:
        """Diff old and new groups and queue the events (DELETE, UPDATE, CREATE, the order
        Django DDP chose so a client never sees an object twice)."""
        old_group_names = instance.__dict__.get(_OLD_GROUPS, {}).pop(cls, set())
        if action == DELETE:
            new_group_names: set[str] = set()
        else:
            new_group_names = cls._group_set(instance)
        self = cls()
        self.instance = instance
        self.signal_kwargs = kwargs
        self.using = kwargs.get("using") or router.db_for_write(cls.model)
        self.send_messages(instance, old_group_names - new_group_names, DELETE)
        self.send_messages(instance, old_group_names & new_group_names, UPDATE)
        self.send_messages(instance, new_group_names - old_group_names, CREATE)

    def send_messages(self, instance: Any, group_names: set[str], action: str) -> None:
        """Serialize now and send to the groups once the transaction commits."""
        if not group_names:
            return
        payload = self.serialize(instance, action)
        if payload == {}:
            return
        message = self.encode(self.stream, payload)  # type: ignore[arg-type]
        send_after_commit(sorted(group_names), message, using=self.using,
                          alias=self.channel_layer_alias)

    # -- inbound --------------------------------------------------------------------------------

    @classmethod
    def consumer(cls, message: Message, **kwargs: Any) -> None:
        """The consumer to route (or put in a demultiplexer's ``consumers``)."""
        cls.get_handler()(message, **kwargs)

    @classmethod
    def get_handler(cls) -> Callable[..., Any]:
        """``trigger_inbound`` with the session decorators the class asks for."""
        # Imported here: channels.auth loads django.contrib.auth's models, and this module is
        # imported by the channels app's ready() even in projects without django.contrib.auth.
        from channels.auth import channel_session_user
        from channels.sessions import channel_session

        handler = cls.trigger_inbound
        if cls.channel_session_user:
            return channel_session_user(handler)
        if cls.channel_session:
            return channel_session(handler)
        return handler

    @classmethod
    def trigger_inbound(cls, message: Message, **kwargs: Any) -> None:
        """Apply one client request; a refused or failed one becomes an error frame."""
        from django.contrib.auth.models import AnonymousUser  # needs the app registry

        self = cls()
        self.message = message
        self.kwargs = kwargs
        self.user = getattr(message, "user", None) or AnonymousUser()
        self.action = self.pk = self.data = None
        try:
            self.action, self.pk, self.data = self.deserialize(message)
            self.run_action(self.action, self.pk, self.data)
        except BindingError as error:
            logger.warning("%s refused %s from %s: %s: %s%s", cls.__qualname__,
                           f"{self.action!r} of pk {self.pk!r}" if self.action else "a request",
                           message.reply_channel, error.code, error.detail,
                           f" ({error.__cause__})" if error.__cause__ is not None else "")
            self.send_error(error.as_payload(self.action, self.pk))
        except (ConsumeLater, DenyConnection, ChannelSocketException):
            raise  # instructions for the worker, not failures
        except Exception:
            logger.exception("%s failed on %r of pk %r from %s", cls.__qualname__, self.action,
                             self.pk, message.reply_channel)
            error = BindingError("internal_error", "the server failed to apply the request")
            self.send_error(error.as_payload(self.action, self.pk))

    def send_error(self, payload: dict[str, Any]) -> None:
        """Send an error payload to the requesting socket, on the stream it asked on."""
        multiplexer = self.kwargs.get("multiplexer")
        if multiplexer is not None:
            multiplexer.send(payload)
        elif self.message.reply_channel is not None:
            self.message.reply_channel.send(self.encode(self.stream, payload))  # type: ignore

    def deserialize(self, message: Message) -> tuple[Any, Any, Any]:
        """``(action, pk, data)`` from the message; raise ``BindingError`` if unreadable."""
        raise NotImplementedError(f"{type(self).__qualname__} must define deserialize()")

    def has_permission(self, user: Any, action: str, pk: Any) -> bool:
        """Whether ``user`` (maybe an ``AnonymousUser``) may do ``action`` on ``pk`` (None for
        a create)."""
        raise NotImplementedError(
            f"{type(self).__qualname__} must define has_permission(self, user, action, pk)")

    def run_action(self, action: Any, pk: Any, data: Any) -> None:
        """Check the request and the permission, then create, update or delete."""
        if action not in ACTIONS:
            detail = "no action given" if action is None else f"unknown action {action!r}"
            raise BindingError("unknown_action", f"{detail}; use one of {', '.join(ACTIONS)}")
        if action != CREATE:
            if pk is None:
                raise BindingError("missing_pk", f"{action} needs the pk of the object")
            pk = self.pk = self.clean_pk(pk)
        if action != DELETE:
            data = {} if data is None else data
            if not isinstance(data, dict):
                raise BindingError("invalid_request", "data must be a JSON object of fields")
        if not self.has_permission(self.user, action, pk):
            raise BindingError("permission_denied", f"not allowed to {action} this object")
        try:
            # All or nothing: an update saves its fields before its many-to-many values, and
            # a refusal of those must not leave the fields changed (nor their events sent).
            with request_atomic(router.db_for_write(self.model)):
                if action == CREATE:
                    self.create(data)
                elif action == UPDATE:
                    self.update(pk, data)
                else:
                    self.delete(pk)
        except ObjectDoesNotExist:
            raise BindingError("not_found", f"no {self.model_label} with pk {pk!r}")
        except ValidationError as exc:
            detail, errors = _field_errors(exc)
            raise BindingError("invalid_data", detail, errors)
        except DeserializationError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, ValidationError):
                raise BindingError("invalid_data", _field_errors(cause)[0])
            raise BindingError("invalid_data", str(cause or exc))
        except IntegrityError as exc:
            # The database's text names tables, columns and constraints (and on some databases
            # other rows' values): the log gets it, the client a plain refusal.
            raise BindingError("invalid_data",
                               "the database refused the change (a constraint failed)") from exc

    def clean_pk(self, pk: Any) -> Any:
        """The pk converted to the model's pk type (a JSON "5" and 5 are the same object)."""
        try:
            return self.model._meta.pk.to_python(pk)
        except (ValidationError, TypeError, ValueError):
            raise BindingError("invalid_request", f"{pk!r} is not a valid pk for "
                                                  f"{self.model_label}")

    def create(self, data: dict[str, Any]) -> None:
        """Make a new instance from the data."""
        raise NotImplementedError(f"{type(self).__qualname__} must define create(data)")

    def update(self, pk: Any, data: dict[str, Any]) -> None:
        """Apply the data to the instance with this pk."""
        raise NotImplementedError(f"{type(self).__qualname__} must define update(pk, data)")

    def delete(self, pk: Any) -> None:
        """Delete the instance (its delete signals send the DELETE events)."""
        self.model._default_manager.get(pk=pk).delete()
