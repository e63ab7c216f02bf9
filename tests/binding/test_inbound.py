"""Inbound: requests from sockets through a WebsocketDemultiplexer, and the error frame every
request the binding cannot apply gets back."""

from __future__ import annotations

import json
import logging

from django.contrib.auth.models import User

from channels.asgi import channel_layers
from channels.binding.base import DELETE
from channels.routing import route, route_class
from channels.test import TransactionChannelTestCase, WSClient, apply_routes
from channels.worker import Worker
from tests.binding.bindapp.bindings import IntegerValueBinding
from tests.binding.bindapp.models import IntegerValue, Tag
from tests.binding.bindapp.routing import ValuesDemultiplexer, channel_routing
from tests.binding.helpers import BindingTestMixin


class InboundTestCase(BindingTestMixin, TransactionChannelTestCase):
    def setUp(self):
        routes = apply_routes(channel_routing)
        routes.enter()
        self.addCleanup(routes.exit)

    def route_stream(self, binding, stream="test"):
        """Serve ``binding`` on ``stream`` of the app's demultiplexer (for this test)."""
        demultiplexer = type("Demultiplexer", (ValuesDemultiplexer,),
                             {"consumers": {stream: binding.consumer}})
        routes = apply_routes([route_class(demultiplexer, path=r"^/values/(?P<room>[a-z]+)/$")])
        routes.enter()
        self.addCleanup(routes.exit)

    def connect(self, room="lobby", user=None):
        socket = WSClient(path=f"/values/{room}/")
        if user is not None:
            socket.force_login(user)
        socket.send_and_consume("websocket.connect")
        return socket

    def request(self, socket, payload, stream="intval"):
        """Send one request; the consumer must return normally whatever it holds."""
        socket.send_and_consume("websocket.receive", text={"stream": stream, "payload": payload})

    def frames(self, socket):
        found = []
        while (frame := socket.receive()) is not None:
            found.append(frame)
        return found

    def refusal(self, socket, payload, stream="intval"):
        """Send a request the binding must refuse: exactly one frame comes back (the error) and
        one warning is logged; returns the frame's payload."""
        with self.assertLogs("channels.binding", logging.WARNING) as logs:
            self.request(socket, payload, stream)
        assert len(logs.records) == 1, logs.output
        assert logs.records[0].levelno == logging.WARNING
        assert logs.records[0].exc_info is None
        [frame] = self.frames(socket)
        assert frame["stream"] == stream
        return frame["payload"], logs.output[0]


class ValidRequestTests(InboundTestCase):
    def test_create_from_a_socket_reaches_every_socket_in_the_room(self):
        alice, bob, elsewhere = self.connect(), self.connect(), self.connect("attic")
        self.request(alice, {"action": "create", "data": {"name": "a", "value": 7}})
        value = IntegerValue.objects.get(name="a")
        expected = {"stream": "intval", "payload": {
            "action": "create", "pk": value.pk, "model": "bindapp.integervalue",
            "data": {"name": "a", "value": 7, "room": "lobby"}}}
        assert self.frames(alice) == [expected]
        assert self.frames(bob) == [expected]
        assert self.frames(elsewhere) == []

    def test_update_copies_only_the_bound_fields(self):
        value = IntegerValue.objects.create(name="a", value=1, secret="kept")
        socket = self.connect()
        self.request(socket, {"action": "update", "pk": value.pk,
                              "data": {"value": 2, "secret": "overwritten?"}})
        value.refresh_from_db()
        assert (value.value, value.secret) == (2, "kept")
        [frame] = self.frames(socket)
        assert frame["payload"]["action"] == "update"
        assert frame["payload"]["data"] == {"name": "a", "value": 2, "room": "lobby"}

    def test_update_can_move_an_instance_to_another_room(self):
        value = IntegerValue.objects.create(name="a", value=1)
        lobby, attic = self.connect(), self.connect("attic")
        self.request(lobby, {"action": "update", "pk": str(value.pk), "data": {"room": "attic"}})
        assert [f["payload"]["action"] for f in self.frames(lobby)] == ["delete"]
        assert [f["payload"]["action"] for f in self.frames(attic)] == ["create"]

    def test_delete_by_a_permitted_user(self):
        value = IntegerValue.objects.create(name="a")
        staff = User.objects.create_user("staff", is_staff=True)
        socket = self.connect(user=staff)
        self.request(socket, {"action": "delete", "pk": value.pk})
        assert not IntegerValue.objects.exists()
        assert [f["payload"]["action"] for f in self.frames(socket)] == ["delete"]

    def test_the_permission_hook_gets_the_user_action_and_pk(self):
        calls = []
        binding = self.bind(has_permission=lambda self, user, action, pk: calls.append(
            (user.username, action, pk)) or True)
        self.route_stream(binding)
        value = IntegerValue.objects.create(name="a")
        socket = self.connect(user=User.objects.create_user("ann"))
        self.request(socket, {"action": "update", "pk": str(value.pk), "data": {}}, "test")
        self.request(socket, {"action": "create", "data": {"name": "b"}}, "test")
        assert calls == [("ann", "update", value.pk), ("ann", "create", None)]

    def test_many_to_many_fields_can_be_set(self):
        first, second = Tag.objects.create(label="x"), Tag.objects.create(label="y")
        binding = self.bind(fields=["name", "tags"])
        self.route_stream(binding)
        socket = self.connect()
        self.request(socket, {"action": "create", "data": {"name": "a", "tags": [first.pk]}},
                     "test")
        value = IntegerValue.objects.get(name="a")
        assert list(value.tags.all()) == [first]
        self.request(socket, {"action": "update", "pk": value.pk, "data": {"tags": [second.pk]}},
                     "test")
        assert list(value.tags.all()) == [second]


    def test_a_request_refused_part_way_changes_nothing_and_announces_nothing(self):
        """The fields are saved before the many-to-many values: a refusal of those must take
        the saved fields back too, or the client is told 'refused' about a change that
        stayed."""
        tag = Tag.objects.create(label="x")
        value = IntegerValue.objects.create(name="a", value=1)
        binding = self.bind(fields=["name", "value", "tags"])
        self.route_stream(binding)
        socket = self.connect()
        listener = self.listener("test-all")
        with self.assertLogs("channels.binding", logging.WARNING):
            self.request(socket, {"action": "update", "pk": value.pk,
                                  "data": {"value": 9, "tags": [tag.pk, tag.pk + 1000]}},
                         "test")
        frames = self.frames(socket)
        assert [frame["payload"].get("error") for frame in frames] == ["invalid_data"], frames
        value.refresh_from_db()
        assert value.value == 1 and list(value.tags.all()) == []
        assert BindingTestMixin.frames(self, listener) == []  # no event for a change undone
        with self.assertLogs("channels.binding", logging.WARNING):
            self.request(socket, {"action": "create",
                                  "data": {"name": "b", "tags": [tag.pk + 1000]}}, "test")
        assert not IntegerValue.objects.filter(name="b").exists()


class ErrorFrameTests(InboundTestCase):
    def test_unknown_action(self):
        socket = self.connect()
        payload, log = self.refusal(socket, {"action": "explode", "pk": 1})
        assert payload == {"error": "unknown_action",
                           "detail": "unknown action 'explode'; use one of create, update, "
                                     "delete",
                           "request": {"action": "explode", "pk": 1}}
        assert "IntegerValueBinding refused 'explode' of pk 1 from" in log
        assert "unknown_action" in log

    def test_missing_action(self):
        payload, _ = self.refusal(self.connect(), {"data": {"name": "a"}})
        assert payload["error"] == "unknown_action"
        assert payload["request"] == {"action": None, "pk": None}

    def test_update_and_delete_need_a_pk(self):
        socket = self.connect(user=User.objects.create_user("staff", is_staff=True))
        for action in ("update", "delete"):
            payload, _ = self.refusal(socket, {"action": action, "data": {"value": 1}})
            assert payload == {"error": "missing_pk",
                               "detail": f"{action} needs the pk of the object",
                               "request": {"action": action, "pk": None}}

    def test_a_pk_of_the_wrong_type(self):
        payload, _ = self.refusal(self.connect(), {"action": "update", "pk": "abc",
                                                   "data": {}})
        assert payload["error"] == "invalid_request"
        assert payload["request"] == {"action": "update", "pk": "abc"}

    def test_data_that_is_not_an_object(self):
        value = IntegerValue.objects.create(name="a")
        payload, _ = self.refusal(self.connect(), {"action": "update", "pk": value.pk,
                                                   "data": [1, 2]})
        assert payload["error"] == "invalid_request"
        assert payload["detail"] == "data must be a JSON object of fields"

    def test_data_the_field_cannot_read(self):
        value = IntegerValue.objects.create(name="a", value=5)
        payload, _ = self.refusal(self.connect(), {"action": "update", "pk": value.pk,
                                                   "data": {"value": "lots"}})
        assert payload["error"] == "invalid_data"
        assert payload["request"] == {"action": "update", "pk": value.pk}
        assert list(payload["errors"]) == ["value"]
        assert "must be an integer" in payload["errors"]["value"][0]
        value.refresh_from_db()
        assert value.value == 5

    def test_data_that_fails_model_validation(self):
        value = IntegerValue.objects.create(name="a", value=5)
        socket = self.connect()
        payload, _ = self.refusal(socket, {"action": "update", "pk": value.pk,
                                           "data": {"value": 5000}})
        assert payload["error"] == "invalid_data"
        assert payload["errors"] == {
            "value": ["Ensure this value is less than or equal to 1000."]}
        value.refresh_from_db()
        assert value.value == 5
        IntegerValue.objects.create(name="taken")
        assert [f["payload"]["action"] for f in self.frames(socket)] == ["create"]
        payload, _ = self.refusal(socket, {"action": "create", "data": {"name": "taken"}})
        assert payload["error"] == "invalid_data"
        assert payload["errors"] == {"name": ["Integer value with this Name already exists."]}
        payload, _ = self.refusal(socket, {"action": "create", "data": {"value": 1}})
        assert payload["errors"] == {"name": ["This field cannot be blank."]}
        assert IntegerValue.objects.count() == 2

    def test_fields_the_model_does_not_have(self):
        payload, _ = self.refusal(self.connect(), {"action": "create",
                                                   "data": {"name": "a", "colour": "red"}})
        assert payload["error"] == "invalid_data"
        assert payload["errors"] == {"colour": ["no such field"]}
        assert not IntegerValue.objects.exists()

    def test_object_not_found(self):
        socket = self.connect(user=User.objects.create_user("staff", is_staff=True))
        for action in ("update", "delete"):
            payload, _ = self.refusal(socket, {"action": action, "pk": 999, "data": {}})
            assert payload == {"error": "not_found",
                               "detail": "no bindapp.integervalue with pk 999",
                               "request": {"action": action, "pk": 999}}

    def test_permission_refused(self):
        value = IntegerValue.objects.create(name="a")
        socket = self.connect()  # anonymous: may not delete
        payload, log = self.refusal(socket, {"action": DELETE, "pk": value.pk})
        assert payload == {"error": "permission_denied",
                           "detail": "not allowed to delete this object",
                           "request": {"action": "delete", "pk": value.pk}}
        assert "permission_denied" in log
        assert IntegerValue.objects.filter(pk=value.pk).exists()

    def test_a_failing_hook_is_an_internal_error_with_its_traceback_logged(self):
        def broken(self, user, action, pk):
            raise KeyError("bug")

        binding = self.bind(has_permission=broken)
        self.route_stream(binding)
        socket = self.connect()
        with self.assertLogs("channels.binding", logging.ERROR) as logs:
            self.request(socket, {"action": "create", "data": {"name": "a"}}, "test")
        assert logs.records[0].exc_info is not None  # a bug: the traceback is worth having
        assert self.frames(socket) == [{"stream": "test", "payload": {
            "error": "internal_error", "detail": "the server failed to apply the request",
            "request": {"action": "create", "pk": None}}}]

    def test_a_database_refusal_names_no_table_to_the_client_but_logs_it(self):
        def create_unchecked(self, data):
            IntegerValue.objects.create(**data)  # no full_clean: the database decides

        binding = self.bind(create=create_unchecked)
        self.route_stream(binding)
        IntegerValue.objects.create(name="taken")
        socket = self.connect()
        with self.assertLogs("channels.binding", logging.WARNING) as logs:
            self.request(socket, {"action": "create", "data": {"name": "taken"}}, "test")
        [frame] = self.frames(socket)
        assert frame["payload"]["error"] == "invalid_data"
        assert "bindapp_integervalue" not in json.dumps(frame)
        assert "bindapp_integervalue" in logs.output[0]  # the operator still sees why
        assert IntegerValue.objects.count() == 1

    def test_the_error_goes_out_on_the_stream_the_request_came_on(self):
        self.route_stream(IntegerValueBinding, "other-name")
        payload, _ = self.refusal(self.connect(), {"action": "nope"}, stream="other-name")
        assert payload["error"] == "unknown_action"

    def test_after_an_error_the_next_request_works(self):
        socket = self.connect()
        self.refusal(socket, {"action": "create", "data": {"value": -1}})
        self.request(socket, {"action": "create", "data": {"name": "a", "value": 1}})
        assert [f["payload"]["action"] for f in self.frames(socket)] == ["create"]


class DirectRouteTests(BindingTestMixin, TransactionChannelTestCase):
    """A binding routed straight to ``websocket.receive`` reads the frame itself."""

    def setUp(self):
        routes = apply_routes([route("websocket.receive", IntegerValueBinding.consumer)])
        routes.enter()
        self.addCleanup(routes.exit)

    def refusal(self, content):
        socket = WSClient()
        with self.assertLogs("channels.binding", logging.WARNING) as logs:
            socket.send_and_consume("websocket.receive", content)
        assert len(logs.records) == 1
        frame = socket.receive()
        assert socket.receive() is None
        return frame

    def test_text_that_is_not_json(self):
        frame = self.refusal({"text": "{not json"})
        assert frame["stream"] == "intval"
        assert frame["payload"]["error"] == "invalid_json"
        assert frame["payload"]["detail"].startswith("the request is not JSON: ")
        assert frame["payload"]["request"] == {"action": None, "pk": None}

    def test_a_binary_frame(self):
        frame = self.refusal({"bytes": b"\x00\x01"})
        assert frame["payload"]["error"] == "invalid_json"

    def test_json_that_is_not_an_object(self):
        frame = self.refusal({"text": "[1, 2]"})
        assert frame["payload"]["error"] == "invalid_request"

    def test_a_valid_request_without_a_demultiplexer(self):
        socket = WSClient()
        socket.join_group("values-lobby")
        socket.send_and_consume("websocket.receive", text={"action": "create",
                                                          "data": {"name": "a"}})
        assert socket.receive()["payload"]["action"] == "create"


class DirectRouteOptionTests(BindingTestMixin, TransactionChannelTestCase):
    def route(self, binding):
        routes = apply_routes([route(name, binding.consumer) for name in (
            "websocket.connect", "websocket.receive", "websocket.disconnect")])
        routes.enter()
        self.addCleanup(routes.exit)

    def test_strict_ordering_runs_requests_in_the_sockets_order(self):
        self.route(self.bind(strict_ordering=True))
        socket = WSClient(ordered=True)
        socket.join_group("test-all")
        socket.send("websocket.connect")
        socket.send("websocket.receive", text={"action": "create", "data": {"name": "one"}})
        socket.send("websocket.receive", text={"action": "create", "data": {"name": "two"}})
        # Consumed out of order: the second request waits for the first.
        first_receive = channel_layers["default"].receive(["websocket.receive"])
        second_receive = channel_layers["default"].receive(["websocket.receive"])
        channel_layers["default"].send("websocket.receive", second_receive[1])
        socket.consume("websocket.receive")  # order 2, early: parked
        assert not IntegerValue.objects.exists()
        socket.consume("websocket.connect", check_accept=False)
        channel_layers["default"].send("websocket.receive", first_receive[1])
        socket.consume("websocket.receive")  # order 1 runs, then releases order 2
        socket.consume("websocket.receive")
        assert list(IntegerValue.objects.order_by("pk").values_list("name", flat=True)) == [
            "one", "two"]

    def test_http_user_brings_the_browsers_login_to_the_requests(self):
        users = []
        self.route(self.bind(http_user=True, has_permission=lambda self, user, action, pk:
                             users.append(user.username) or True))
        socket = WSClient()
        socket.force_login(User.objects.create_user("ann"))
        socket.send_and_consume("websocket.connect", check_accept=False)
        socket.send_and_consume("websocket.receive", text={"action": "create",
                                                          "data": {"name": "a"}})
        assert users == ["ann"]


class WorkerTests(InboundTestCase):
    def test_the_worker_answers_bad_requests_and_carries_on(self):
        socket = self.connect()
        worker = Worker(channel_layers["default"], signal_handlers=False)
        requests = [{"action": "update", "pk": 12345, "data": {"value": 1}},
                    {"action": "create", "data": {"name": "a"}}]
        with self.assertLogs("channels.binding", logging.WARNING):
            for payload in requests:
                socket.send("websocket.receive", text=json.dumps(
                    {"stream": "intval", "payload": payload}))
                channel, content = channel_layers["default"].receive(["websocket.receive"])
                worker.handle(channel, content)
        frames = self.frames(socket)
        assert [frame["payload"].get("error") for frame in frames] == ["not_found", None]
        assert frames[1]["payload"]["action"] == "create"
