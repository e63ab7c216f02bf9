import os
import time

from channels import Channel


def ws_connect(message):
    message.reply_channel.send({"accept": True})


def ws_echo(message):
    message.reply_channel.send({"text": f"echo:{message['text']}"})


def slow_job(message):
    """A consumer that takes a while: tells the test it started, works, then reports done."""
    Channel(message["reply"]).send({"event": "started", "pid": os.getpid()}, immediately=True)
    time.sleep(message["seconds"])  # the "work"; the test waits on the messages, not on time
    Channel(message["reply"]).send({"event": "done", "pid": os.getpid()})
