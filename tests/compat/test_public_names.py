"""Every public name of Channels 1.1 that the Django side provides, with its documented
signature and defaults (REFERENCE-channels1.md §1, §2), so a 1.1 project imports and runs
unchanged. Binding and delay are covered with their own issue."""

from __future__ import annotations

import importlib
import inspect
import warnings

import pytest
from django.core.management import load_command_class
from django.dispatch import Signal

PUBLIC_NAMES = {
    "channels": ["DEFAULT_CHANNEL_LAYER", "channel_layers", "Channel", "Group", "route",
                 "route_class", "include"],
    "channels.asgi": ["InvalidChannelLayerError", "ChannelLayerManager", "ChannelLayerWrapper",
                      "get_channel_layer", "channel_layers"],
    "channels.message": ["Message", "PendingMessageStore", "pending_message_store"],
    "channels.channel": ["Channel", "Group"],
    "channels.exceptions": ["ConsumeLater", "ResponseLater", "RequestTimeout", "RequestAborted",
                            "DenyConnection", "ChannelSocketException",
                            "WebsocketCloseException", "SendNotAvailableOnDemultiplexer"],
    "channels.routing": ["Router", "Route", "RouteClass", "Include", "null_consumer",
                         "connect_consumer", "route", "route_class", "include"],
    "channels.handler": ["AsgiRequest", "AsgiHandler", "ViewConsumer"],
    "channels.sessions": ["session_for_reply_channel", "channel_session", "http_session",
                          "channel_and_http_session", "enforce_ordering", "wait_channel_name",
                          "requeue_messages"],
    "channels.auth": ["transfer_user", "channel_session_user", "http_session_user",
                      "channel_session_user_from_http",
                      "channel_and_http_session_user_from_http"],
    "channels.generic": ["BaseConsumer"],
    "channels.generic.websockets": ["WebsocketConsumer", "JsonWebsocketConsumer",
                                    "WebsocketMultiplexer", "WebsocketDemultiplexer"],
    "channels.test": ["ChannelTestCase", "TransactionChannelTestCase", "Client", "WSClient",
                      "HttpClient", "apply_routes", "ChannelLiveServerTestCase"],
    "channels.worker": ["Worker", "WorkerGroup"],
    "channels.signals": ["consumer_started", "consumer_finished", "worker_ready",
                         "worker_process_ready"],
    "channels.security.websockets": ["BaseOriginValidator", "AllowedHostsOnlyOriginValidator",
                                     "allowed_hosts_only"],
    "channels.staticfiles": ["StaticFilesHandler", "StaticFilesConsumer"],
    "channels.utils": ["name_that_thing"],
    "channels.log": ["setup_logger"],
}


@pytest.mark.parametrize("module_name,names", sorted(PUBLIC_NAMES.items()))
def test_module_exports_its_channels_1_names(module_name, names):
    module = importlib.import_module(module_name)
    missing = [name for name in names if not hasattr(module, name)]
    assert missing == [], f"{module_name} lacks {missing}"


@pytest.mark.parametrize("module_name", ["channels.tests", "channels.test.http"])
def test_deprecated_test_modules_still_import_with_a_warning(module_name):
    import sys

    sys.modules.pop(module_name, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(module_name)
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    from channels.test import WSClient

    assert module.HttpClient is WSClient


def defaults(callable_) -> dict:
    return {name: parameter.default for name, parameter in
            inspect.signature(callable_).parameters.items()
            if parameter.default is not inspect.Parameter.empty}


def test_top_level_aliases_and_default_alias():
    import channels
    from channels import asgi, routing

    assert channels.DEFAULT_CHANNEL_LAYER == "default"
    assert channels.channel_layers is asgi.channel_layers
    assert channels.route is routing.Route
    assert channels.route_class is routing.RouteClass
    assert channels.include is routing.Include
    assert issubclass(asgi.InvalidChannelLayerError, ValueError)
    assert defaults(asgi.get_channel_layer) == {"alias": "default"}


def test_channel_and_group_signatures():
    from channels import Channel, Group

    for cls in (Channel, Group):
        assert defaults(cls) == {"alias": "default", "channel_layer": None}
        assert defaults(cls.send) == {"immediately": False}


def test_message_and_pending_store():
    from channels.message import Message, PendingMessageStore, pending_message_store

    assert list(inspect.signature(Message).parameters) == ["content", "channel_name",
                                                           "channel_layer"]
    for name in ("keys", "values", "items", "get", "copy"):
        assert callable(getattr(Message, name))
    assert isinstance(pending_message_store, PendingMessageStore)
    for name in ("prepare", "append", "send_and_flush"):
        assert callable(getattr(pending_message_store, name))
    assert pending_message_store.retry_time == 2


def test_exception_hierarchy():
    from channels import exceptions

    assert issubclass(exceptions.WebsocketCloseException, exceptions.ChannelSocketException)
    assert callable(exceptions.ChannelSocketException.run)
    assert defaults(exceptions.WebsocketCloseException) == {"code": None}


def test_routing_helpers():
    from channels.routing import Router

    assert Router.normalise_re_arg(b"^/chat/") == "^/chat/"
    assert Router.normalise_re_arg("x") == "x"
    assert defaults(Router.check_default) == {"http_consumer": None}
    assert callable(Router.resolve_routing)


def test_handler_defaults():
    from channels.exceptions import ResponseLater
    from channels.handler import AsgiHandler, AsgiRequest, ViewConsumer

    assert AsgiRequest.body_receive_timeout == 60
    assert AsgiRequest.ResponseLater is ResponseLater
    assert AsgiHandler.request_class is AsgiRequest
    assert AsgiHandler.chunk_size == 512 * 1024
    assert ViewConsumer.handler_class is AsgiHandler
    assert list(AsgiHandler.chunk_bytes(b"")) == [(b"", True)]


def test_session_and_auth_decorator_signatures():
    from channels.sessions import enforce_ordering

    assert defaults(enforce_ordering) == {"func": None, "slight": False}


def test_generic_consumer_defaults():
    from channels.generic import BaseConsumer
    from channels.generic.websockets import (
        JsonWebsocketConsumer,
        WebsocketConsumer,
        WebsocketDemultiplexer,
        WebsocketMultiplexer,
    )

    assert BaseConsumer.method_mapping == {}
    assert BaseConsumer.channel_session is False
    assert BaseConsumer.channel_session_user is False
    assert defaults(BaseConsumer.as_route) == {"attrs": None}
    assert WebsocketConsumer.method_mapping == {
        "websocket.connect": "raw_connect",
        "websocket.receive": "raw_receive",
        "websocket.disconnect": "raw_disconnect",
    }
    assert WebsocketConsumer.channel_names() == {"websocket.connect", "websocket.receive",
                                                 "websocket.disconnect"}
    for attribute in ("http_user", "http_user_and_session", "strict_ordering"):
        assert getattr(WebsocketConsumer, attribute) is False
    assert WebsocketConsumer.groups is None
    assert defaults(WebsocketConsumer.receive) == {"text": None, "bytes": None}
    assert defaults(WebsocketConsumer.send) == {"text": None, "bytes": None, "close": False}
    assert defaults(WebsocketConsumer.group_send) == {"text": None, "bytes": None,
                                                      "close": False}
    assert defaults(WebsocketConsumer.close) == {"status": True}
    assert defaults(JsonWebsocketConsumer.send) == {"close": False}
    assert defaults(JsonWebsocketConsumer.group_send) == {"close": False}
    assert list(inspect.signature(WebsocketMultiplexer).parameters) == ["stream",
                                                                        "reply_channel"]
    assert defaults(WebsocketMultiplexer.group_send) == {"close": False}
    assert WebsocketDemultiplexer.consumers == {}
    assert WebsocketDemultiplexer.multiplexer_class is WebsocketMultiplexer
    assert issubclass(WebsocketDemultiplexer, JsonWebsocketConsumer)


def test_test_framework_defaults():
    from django.test import TestCase, TransactionTestCase

    from channels.test import (
        ChannelTestCase,
        Client,
        TransactionChannelTestCase,
        WSClient,
        apply_routes,
    )

    assert issubclass(ChannelTestCase, TestCase)
    assert issubclass(TransactionChannelTestCase, TransactionTestCase)
    assert ChannelTestCase.test_channel_aliases == ["default"]
    assert defaults(ChannelTestCase.get_next_message) == {"alias": "default", "require": False}
    assert defaults(Client) == {"alias": "default"}
    assert defaults(Client.consume) == {"fail_on_none": True}
    client = WSClient(ordered=True)  # Channels 1.1 took its options as keywords
    assert client.alias == "default" and client._ordered
    assert defaults(WSClient.receive) == {"json": True}
    assert defaults(WSClient.send_and_consume)["check_accept"] is True
    assert defaults(WSClient.force_login) == {"backend": None}
    assert defaults(apply_routes) == {"aliases": None}


def test_live_server_test_case_defaults():
    from django.test import TransactionTestCase

    from channels.test import ChannelLiveServerTestCase

    assert issubclass(ChannelLiveServerTestCase, TransactionTestCase)
    assert ChannelLiveServerTestCase.worker_threads == 1
    assert ChannelLiveServerTestCase.serve_static is True
    for attribute in ("live_server_url", "live_server_ws_url"):
        assert isinstance(getattr(ChannelLiveServerTestCase, attribute), property)


def test_worker_signature_and_defaults():
    from channels.worker import Worker, WorkerGroup

    assert defaults(Worker) == {"callback": None, "message_retries": 10,
                                "signal_handlers": True, "only_channels": None,
                                "exclude_channels": None, "batch_size": None}
    assert "n_threads" in inspect.signature(WorkerGroup).parameters
    for name in ("run", "ready", "apply_channel_filters", "install_signal_handler",
                 "sigterm_handler"):
        assert callable(getattr(Worker, name))
    worker = Worker(channel_layer=None, only_channels=["websocket.*"],
                    exclude_channels=["websocket.disconnect"])
    assert (worker.termed, worker.in_job) == (False, False)
    assert worker.apply_channel_filters(
        ["http.request", "websocket.connect", "websocket.disconnect"]) == ["websocket.connect"]


def test_signals_are_django_signals():
    from channels import signals

    for name in PUBLIC_NAMES["channels.signals"]:
        assert isinstance(getattr(signals, name), Signal)


def test_security_alias():
    from channels.security.websockets import (
        AllowedHostsOnlyOriginValidator,
        BaseOriginValidator,
        allowed_hosts_only,
    )

    assert allowed_hosts_only is AllowedHostsOnlyOriginValidator
    assert issubclass(AllowedHostsOnlyOriginValidator, BaseOriginValidator)


def test_staticfiles_consumer_uses_the_static_handler():
    from channels.handler import AsgiHandler, ViewConsumer
    from channels.staticfiles import StaticFilesConsumer, StaticFilesHandler

    assert issubclass(StaticFilesHandler, AsgiHandler)
    assert issubclass(StaticFilesConsumer, ViewConsumer)
    assert StaticFilesConsumer.handler_class is StaticFilesHandler


def test_log_and_utils():
    from channels.log import setup_logger
    from channels.utils import name_that_thing

    assert defaults(setup_logger) == {"verbosity": 1}
    assert name_that_thing(name_that_thing) == "channels.utils.name_that_thing"
    assert name_that_thing(setup_logger("channels.compat-test")).endswith("Logger")


def command_defaults(name: str, *argv: str) -> dict:
    command = load_command_class("channels", name)
    parser = command.create_parser("manage.py", name)
    return vars(parser.parse_args(list(argv)))


def test_runserver_options_and_defaults():
    options = command_defaults("runserver")
    assert options["run_worker"] is True
    assert options["use_asgi"] is True
    assert options["http_timeout"] == 60
    assert options["websocket_handshake_timeout"] == 5
    assert options["use_threading"] is True and options["use_reloader"] is True
    flipped = command_defaults("runserver", "--noworker", "--noasgi", "--http_timeout", "7",
                               "--websocket_handshake_timeout", "3")
    assert (flipped["run_worker"], flipped["use_asgi"], flipped["http_timeout"],
            flipped["websocket_handshake_timeout"]) == (False, False, 7, 3)
    from channels.management.commands.runserver import Command

    assert Command.worker_threads == 4


def test_runworker_options_and_defaults():
    options = command_defaults("runworker")
    assert options["layer"] == "default"
    assert options["threads"] == 1
    assert options["only_channels"] is None and options["exclude_channels"] is None
    repeated = command_defaults("runworker", "--only-channels", "http.*", "--only-channels",
                                "websocket.*", "--exclude-channels", "websocket.receive")
    assert repeated["only_channels"] == ["http.*", "websocket.*"]
    assert repeated["exclude_channels"] == ["websocket.receive"]


def test_staticfiles_runserver_is_ours():
    """Projects list django.contrib.staticfiles before channels; its runserver must be ours."""
    from django.contrib.staticfiles.management.commands import runserver as static_runserver

    from channels.management.commands.runserver import Command

    assert static_runserver.Command is Command
