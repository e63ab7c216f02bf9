"""Binding classes: the names 1.1 code imports, class checks, and when signals get connected."""

from __future__ import annotations

import pytest
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

import channels.binding
from channels.binding import base
from channels.binding.base import CREATE, DELETE, UPDATE, Binding, BindingMetaclass
from channels.binding.websockets import WebsocketBinding, WebsocketBindingWithMembers
from tests.binding.bindapp.bindings import IntegerValueBinding
from tests.binding.bindapp.models import IntegerValue

SIGNALS = (pre_save, post_save, pre_delete, post_delete)


def connected(binding: type, model: type = IntegerValue) -> list[bool]:
    """For each save/delete signal, whether ``binding`` receives it for ``model``."""
    result = []
    for signal, receiver in zip(SIGNALS, ("pre_save_receiver", "post_save_receiver",
                                          "pre_delete_receiver", "post_delete_receiver"),
                                strict=True):
        live = signal._live_receivers(model)
        live = live[0] if isinstance(live, tuple) else live  # (sync, async) on Django 5
        result.append(getattr(binding, receiver) in live)
    return result


@pytest.fixture
def define():
    """Define binding classes inside a test; their signals are disconnected afterwards."""
    made: list[type] = []

    def make(name: str = "TestBinding", bases: tuple[type, ...] = (WebsocketBinding,),
             **attrs) -> type:
        binding = type(name, bases, attrs)
        made.append(binding)
        return binding

    yield make
    for binding in made:
        binding.unregister()


def test_the_names_of_channels_1_1_are_importable():
    assert channels.binding.Binding is Binding
    assert (CREATE, UPDATE, DELETE) == ("create", "update", "delete")
    assert issubclass(WebsocketBindingWithMembers, WebsocketBinding)
    assert type(Binding) is BindingMetaclass


def test_the_app_registered_the_projects_bindings_when_ready():
    assert BindingMetaclass.register_immediately is True
    assert IntegerValueBinding in BindingMetaclass.binding_classes
    # The "app_label.Model" string was resolved once the models were loaded.
    assert IntegerValueBinding.model is IntegerValue
    assert IntegerValueBinding.model_label == "bindapp.integervalue"
    assert connected(IntegerValueBinding) == [True, True, True, True]


def test_a_class_made_after_ready_registers_at_once(define):
    binding = define(model=IntegerValue, stream="s", fields=["name"],
                     group_names=classmethod(lambda cls, instance: []))
    assert connected(binding) == [True, True, True, True]
    binding.unregister()
    assert connected(binding) == [False, False, False, False]
    assert binding not in BindingMetaclass.binding_classes


def test_classes_made_before_ready_wait_for_register_all(define, monkeypatch):
    monkeypatch.setattr(BindingMetaclass, "register_immediately", False)
    monkeypatch.setattr(BindingMetaclass, "binding_classes", [])
    early = define(model="bindapp.IntegerValue", stream="s", fields=["name"],
                   group_names=classmethod(lambda cls, instance: []))
    assert BindingMetaclass.binding_classes == [early]
    assert early.model == "bindapp.IntegerValue"  # not resolved yet: models may not be loaded
    assert connected(early) == [False, False, False, False]
    BindingMetaclass.register_all()
    assert early.model is IntegerValue
    assert connected(early) == [True, True, True, True]
    assert BindingMetaclass.register_immediately is True
    late = define(model=IntegerValue, stream="s", exclude=["secret"],
                  group_names=classmethod(lambda cls, instance: []))
    assert connected(late) == [True, True, True, True]


def test_registering_twice_connects_once(define):
    binding = define(model=IntegerValue, stream="s", fields=["name"],
                     group_names=classmethod(lambda cls, instance: []))
    binding.register()
    live = post_save._live_receivers(IntegerValue)
    live = live[0] if isinstance(live, tuple) else live
    assert sum(1 for receiver in live if receiver == binding.post_save_receiver) == 1


def test_model_none_on_the_class_itself_is_abstract(define):
    abstract = define(model=None)
    assert abstract.get_registered_models() == []
    assert WebsocketBinding.get_registered_models() == []
    assert WebsocketBindingWithMembers.get_registered_models() == []


def test_a_subclass_without_a_model_is_refused(define):
    abstract = define(model=None)
    with pytest.raises(ValueError, match="must set model"):
        define("NoModel", bases=(abstract,), stream="s", fields=["name"])


def test_fields_or_exclude_is_required():
    with pytest.raises(ValueError, match="must set fields .* or exclude"):
        type("NoFields", (WebsocketBinding,), {"model": IntegerValue, "stream": "s"})


def test_a_single_field_name_as_a_string_is_refused():
    with pytest.raises(ValueError, match="must be a list of field names, not the string 'name'"):
        type("StringFields", (WebsocketBinding,),
             {"model": IntegerValue, "stream": "s", "fields": "name"})


def test_a_stream_is_required():
    with pytest.raises(ValueError, match="must set stream"):
        type("NoStream", (WebsocketBinding,), {"model": IntegerValue, "fields": ["name"]})


def test_an_unknown_model_string_is_refused():
    with pytest.raises(LookupError):
        type("Unknown", (WebsocketBinding,),
             {"model": "bindapp.Nothing", "stream": "s", "fields": ["name"]})


def test_a_refused_class_is_not_kept_for_a_later_register_all():
    count = len(BindingMetaclass.binding_classes)
    with pytest.raises(ValueError):
        type("NoStream", (WebsocketBinding,), {"model": IntegerValue, "fields": ["name"]})
    assert len(BindingMetaclass.binding_classes) == count


def test_the_module_logger_is_named_for_the_package():
    assert base.logger.name == "channels.binding"


def test_the_channels_app_starts_in_a_project_without_contrib_auth():
    """The app's ready() imports channels.binding.base, so it must not load auth's models."""
    import subprocess
    import sys

    code = (
        "import django; from django.conf import settings; "
        "settings.configure(INSTALLED_APPS=['channels']); django.setup(); "
        "from channels.binding.base import BindingMetaclass; "
        "print(BindingMetaclass.register_immediately)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=20)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
