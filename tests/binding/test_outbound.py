"""Outbound: model changes become events for the groups an instance left, stayed in or joined,
sent once the transaction commits."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth.models import User
from django.db import transaction

from channels.binding.websockets import WebsocketBindingWithMembers
from channels.routing import route
from channels.test import (
    ChannelTestCase,
    Client,
    TransactionChannelTestCase,
    WSClient,
    apply_routes,
)
from tests.binding.bindapp.models import IntegerValue
from tests.binding.helpers import BindingTestMixin


def event(action, instance, data, stream="test"):
    return {"stream": stream, "payload": {"action": action, "pk": instance.pk, "data": data,
                                          "model": "bindapp.integervalue"}}


class EventTests(BindingTestMixin, TransactionChannelTestCase):
    def test_create_update_delete_reach_the_group_as_multiplexer_frames(self):
        self.bind()
        socket = self.listener("test-all")
        value = IntegerValue.objects.create(name="a", value=1)
        value.value = 2
        value.save()
        pk = value.pk
        value.delete()
        frames = self.frames(socket)
        assert frames == [
            {"stream": "test", "payload": {"action": "create", "pk": pk, "model":
                                           "bindapp.integervalue",
                                           "data": {"name": "a", "value": 1, "room": "lobby"}}},
            {"stream": "test", "payload": {"action": "update", "pk": pk, "model":
                                           "bindapp.integervalue",
                                           "data": {"name": "a", "value": 2, "room": "lobby"}}},
            {"stream": "test", "payload": {"action": "delete", "pk": pk, "model":
                                           "bindapp.integervalue",
                                           "data": {"name": "a", "value": 2, "room": "lobby"}}},
        ]

    def test_every_group_of_the_instance_gets_the_event(self):
        self.bind(groups=["test-one", "test-two"])
        one, two, other = (self.listener("test-one"), self.listener("test-two"),
                           self.listener("test-other"))
        IntegerValue.objects.create(name="a", value=1)
        assert [f["payload"]["action"] for f in self.frames(one)] == ["create"]
        assert [f["payload"]["action"] for f in self.frames(two)] == ["create"]
        assert self.frames(other) == []

    def test_moving_between_groups_deletes_updates_and_creates(self):
        self.bind(groups=lambda instance: [f"test-room-{instance.room}", "test-all"])
        red, blue, everyone = (self.listener("test-room-red"), self.listener("test-room-blue"),
                               self.listener("test-all"))
        value = IntegerValue.objects.create(name="a", value=1, room="red")
        assert [f["payload"]["action"] for f in self.frames(red)] == ["create"]
        assert [f["payload"]["action"] for f in self.frames(everyone)] == ["create"]
        # A fresh instance in hand: the old room must come from the database, not from it.
        moved = IntegerValue.objects.get(pk=value.pk)
        moved.room = "blue"
        moved.save()
        data = {"name": "a", "value": 1, "room": "blue"}
        assert self.frames(red) == [event("delete", value, data)]
        assert self.frames(blue) == [event("create", value, data)]
        assert self.frames(everyone) == [event("update", value, data)]

    def test_a_deleted_instance_leaves_every_group(self):
        self.bind(groups=lambda instance: [f"test-room-{instance.room}"])
        value = IntegerValue.objects.create(name="a", value=1, room="red")
        red = self.listener("test-room-red")
        IntegerValue.objects.filter(pk=value.pk).delete()  # a queryset delete, too
        assert [(f["payload"]["action"], f["payload"]["pk"]) for f in self.frames(red)] == [
            ("delete", value.pk)]

    def test_a_single_group_name_may_be_returned_as_a_string(self):
        self.bind(groups=lambda instance: "test-all")
        socket = self.listener("test-all")
        IntegerValue.objects.create(name="a")
        assert [f["payload"]["action"] for f in self.frames(socket)] == ["create"]

    def test_fields_limit_what_is_sent(self):
        self.bind(fields=["value"])
        socket = self.listener("test-all")
        IntegerValue.objects.create(name="a", value=3, secret="s3cret")
        assert self.frames(socket)[0]["payload"]["data"] == {"value": 3}

    def test_exclude_sends_everything_else(self):
        self.bind(exclude=["secret", "owner", "tags"])
        socket = self.listener("test-all")
        IntegerValue.objects.create(name="a", value=3, secret="s3cret")
        assert self.frames(socket)[0]["payload"]["data"] == {"name": "a", "value": 3,
                                                            "room": "lobby"}

    def test_all_fields(self):
        self.bind(fields="__all__", groups=["test-one"])
        self.bind(fields=["__all__"], groups=["test-two"])
        one, two = self.listener("test-one"), self.listener("test-two")
        owner = User.objects.create_user("owner")
        IntegerValue.objects.create(name="a", value=3, secret="s", owner=owner)
        for socket in (one, two):
            [frame] = self.frames(socket)
            assert frame["payload"]["data"] == {"name": "a", "value": 3, "room": "lobby",
                                                "secret": "s", "owner": owner.pk, "tags": []}

    def test_send_members_adds_attributes_properties_methods_and_paths(self):
        self.bind(base=WebsocketBindingWithMembers, fields=["name"],
                  send_members=["doubled", "describe", "owner.username", "room"])
        socket = self.listener("test-all")
        owner = User.objects.create_user("ann")
        IntegerValue.objects.create(name="a", value=21, owner=owner)
        assert self.frames(socket)[0]["payload"]["data"] == {
            "name": "a", "doubled": 42, "describe": "a=21", "owner__username": "ann",
            "room": "lobby"}

    def test_an_empty_serialization_sends_nothing(self):
        self.bind(serialize=lambda self, instance, action: {} if action == "update" else {
            "action": action})
        socket = self.listener("test-all")
        value = IntegerValue.objects.create(name="a")
        value.save()
        value.delete()
        assert [f["payload"] for f in self.frames(socket)] == [{"action": "create"},
                                                              {"action": "delete"}]

    def test_serialize_sees_the_signal_arguments(self):
        seen = []

        def serialize(self, instance, action):
            seen.append((action, self.signal_kwargs.get("created"),
                         self.signal_kwargs.get("using")))
            return {"action": action}

        self.bind(serialize=serialize)
        value = IntegerValue.objects.create(name="a")
        value.save()
        assert seen == [("create", True, "default"), ("update", False, "default")]

    def test_a_group_send_that_fails_is_logged_and_the_save_stands(self):
        self.bind(groups=["not a valid group name!", "test-all"])
        socket = self.listener("test-all")
        with self.assertLogs("channels.binding", logging.ERROR) as logs:
            IntegerValue.objects.create(name="a")
        assert IntegerValue.objects.filter(name="a").exists()
        assert "Could not send a binding event to group 'not a valid group name!'" in (
            logs.output[0])
        assert [f["payload"]["action"] for f in self.frames(socket)] == ["create"]


class TransactionTests(BindingTestMixin, TransactionChannelTestCase):
    def test_a_rolled_back_change_sends_nothing(self):
        self.bind()
        socket = self.listener("test-all")
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                IntegerValue.objects.create(name="a")
                raise RuntimeError("abort")
        assert not IntegerValue.objects.exists()
        assert self.frames(socket) == []

    def test_a_committed_change_is_sent_once_after_the_commit(self):
        self.bind()
        socket = self.listener("test-all")
        with transaction.atomic():
            IntegerValue.objects.create(name="a")
            assert self.frames(socket) == []  # not before the commit
        assert [f["payload"]["action"] for f in self.frames(socket)] == ["create"]
        assert self.frames(socket) == []

    def test_a_rolled_back_savepoint_drops_only_its_own_events(self):
        self.bind()
        socket = self.listener("test-all")
        with transaction.atomic():
            IntegerValue.objects.create(name="kept")
            try:
                with transaction.atomic():
                    IntegerValue.objects.create(name="dropped")
                    raise RuntimeError("abort")
            except RuntimeError:
                pass
        assert [f["payload"]["data"]["name"] for f in self.frames(socket)] == ["kept"]

    def test_the_event_carries_the_row_as_saved_not_as_it_is_at_commit(self):
        self.bind()
        socket = self.listener("test-all")
        with transaction.atomic():
            value = IntegerValue.objects.create(name="a", value=1)
            value.value = 2
            value.save()
            value.value = 999  # changed in memory, never saved
        assert [(f["payload"]["action"], f["payload"]["data"]["value"])
                for f in self.frames(socket)] == [("create", 1), ("update", 2)]

    def test_several_saves_in_one_transaction_diff_against_each_other(self):
        self.bind(groups=lambda instance: [f"test-room-{instance.room}"])
        red, blue = self.listener("test-room-red"), self.listener("test-room-blue")
        with transaction.atomic():
            value = IntegerValue.objects.create(name="a", room="red")
            value.room = "blue"
            value.save()
            value.room = "red"
            value.save()
        assert [f["payload"]["action"] for f in self.frames(red)] == ["create", "delete",
                                                                     "create"]
        assert [f["payload"]["action"] for f in self.frames(blue)] == ["create", "delete"]


class InsideConsumerTests(BindingTestMixin, TransactionChannelTestCase):
    """A consumer's own sends wait until it returns (and are dropped if it raises); binding
    events follow the database instead."""

    def run_consumer(self, consumer):
        client = Client()
        with apply_routes([route("binding.test", consumer)]):
            client.send("binding.test", {})
            try:
                client.consume("binding.test")
            except RuntimeError:
                pass
        return client

    def test_a_committed_change_is_sent_even_if_the_consumer_fails_afterwards(self):
        self.bind()
        socket = self.listener("test-all")

        def consumer(message):
            IntegerValue.objects.create(name="a")
            message.reply_channel.send({"text": "held"})
            raise RuntimeError("after the commit")

        client = self.run_consumer(consumer)
        assert IntegerValue.objects.filter(name="a").exists()
        assert [f["payload"]["action"] for f in self.frames(socket)] == ["create"]
        assert client.receive() is None  # the consumer's own send was dropped

    def test_a_change_rolled_back_in_a_consumer_sends_nothing(self):
        self.bind()
        socket = self.listener("test-all")

        def consumer(message):
            with transaction.atomic():
                IntegerValue.objects.create(name="a")
                raise RuntimeError("roll back")

        self.run_consumer(consumer)
        assert not IntegerValue.objects.exists()
        assert self.frames(socket) == []

    def test_a_change_committed_in_a_consumer_is_sent_once(self):
        self.bind()
        socket = self.listener("test-all")

        def consumer(message):
            with transaction.atomic():
                IntegerValue.objects.create(name="a")
            message.reply_channel.send({"text": "done"})

        client = self.run_consumer(consumer)
        assert [f["payload"]["action"] for f in self.frames(socket)] == ["create"]
        assert client.receive() == {"text": "done"}


class TestCaseTransactionTests(BindingTestMixin, ChannelTestCase):
    """Under Django's TestCase (a transaction that never commits) a test's own changes are sent
    as in autocommit, so 1.1-style binding tests keep working; its atomic blocks still count."""

    def test_a_change_made_by_the_test_is_sent(self):
        self.bind()
        socket = self.listener("test-all")
        IntegerValue.objects.create(name="a")
        assert [f["payload"]["action"] for f in self.frames(socket)] == ["create"]

    def test_a_rolled_back_block_in_the_test_sends_nothing(self):
        self.bind()
        socket = self.listener("test-all")
        with self.captureOnCommitCallbacks(execute=True):
            try:
                with transaction.atomic():
                    IntegerValue.objects.create(name="a")
                    raise RuntimeError("abort")
            except RuntimeError:
                pass
        assert self.frames(socket) == []

    def test_a_committed_block_is_sent_with_capture_on_commit_callbacks(self):
        self.bind()
        socket = self.listener("test-all")
        with self.captureOnCommitCallbacks(execute=True):
            with transaction.atomic():
                IntegerValue.objects.create(name="a")
        assert [f["payload"]["action"] for f in self.frames(socket)] == ["create"]

    def test_a_change_a_socket_requests_is_sent(self):
        binding = self.bind(channel_session_user=False)
        socket = self.listener("test-all")
        with apply_routes([route("websocket.receive", binding.consumer)]):
            requester = WSClient()
            requester.send_and_consume("websocket.receive",
                                       text={"action": "create", "data": {"name": "a"}})
        assert [f["payload"]["action"] for f in self.frames(socket)] == ["create"]
