"""Consumers of the reliability project: echo, a consumer that blocks until the test lets it go,
jobs on named channels (to place work on a chosen Redis shard), a group send, and an
origin-checked, session-authenticated socket."""

import json
import os

import redis
from django.conf import settings

from channels import Channel, Group
from channels.auth import channel_session_user_from_http
from channels.security.websockets import allowed_hosts_only

#: Channels the shard tests pick from: of two shards, some names hash to each.
JOB_CHANNELS = [f"rel.{letter}.job" for letter in "abcdefgh"]


def ws_accept(message):
    message.reply_channel.send({"accept": True})


def ws_echo(message):
    # Echoed unchanged, so a client can match every answer to what it sent.
    if message.get("text") is not None:
        message.reply_channel.send({"text": message["text"]})
    else:
        message.reply_channel.send({"bytes": message["bytes"]})


def ws_disconnect(message):
    """Nothing to clean up; routed so a closing socket is not an unrouted message."""


def ws_info(message):
    """Accept and tell the client the name of its own reply channel (what the server made)."""
    message.reply_channel.send({"accept": True})
    message.reply_channel.send({"text": json.dumps({"reply_channel": message.reply_channel.name})})


@allowed_hosts_only
@channel_session_user_from_http
def ws_whoami(message):
    # The origin check wraps everything: a refused socket never reaches the session lookup.
    user = message.user
    message.reply_channel.send({"accept": True})
    message.reply_channel.send({"text": json.dumps(
        {"user": user.username if user.is_authenticated else None})})


def wait_for_gate(gate: str, seconds: float = 20) -> bool:
    """Block until the test pushes to ``gate`` (a Redis list): an event the test controls.
    Pushes to ``<gate>:started`` first, so the test can wait for this point."""
    client = redis.Redis.from_url(settings.GATE_URL, socket_timeout=seconds + 5)
    try:
        client.rpush(f"{gate}:started", os.getpid())
        return client.blpop([gate], timeout=seconds) is not None
    finally:
        client.close()


def blocking_job(message):
    Channel(message["reply"]).send({"event": "started", "pid": os.getpid()}, immediately=True)
    opened = wait_for_gate(message["gate"])
    Channel(message["reply"]).send({"event": "done" if opened else "gate timed out",
                                    "pid": os.getpid()})


def job(message):
    Channel(message["reply"]).send({"n": message["n"], "pid": os.getpid()})


def group_job(message):
    Group(message["group"]).send({"n": message["n"]})
