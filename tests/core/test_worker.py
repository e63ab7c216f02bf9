"""The worker loop on a real in-memory layer (threads) and on a real Redis."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time

import pytest
from django.core.signals import request_finished, request_started

from channels import Channel, Group
from channels.asgi import ChannelLayerWrapper
from channels.exceptions import (
    ChannelSocketException,
    ConsumeLater,
    DenyConnection,
    WebsocketCloseException,
)
from channels.routing import route
from channels.signals import consumer_finished, consumer_started, worker_ready
from channels.worker import Worker, WorkerGroup

from .conftest import make_router

WAIT = 5  # seconds: bound of every wait in these tests


class RunningWorker:
    """A worker in a thread, always stopped and joined at the end of the test."""

    def __init__(self, worker: Worker):
        self.worker = worker
        self.thread = threading.Thread(target=worker.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self.worker

    def __exit__(self, *exc_info):
        self.worker.stop()
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "worker did not stop"


def receive(layer, channel, timeout=WAIT):
    """Blocking receive bounded by ``timeout`` (the layer's own wait is shorter)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        name, content = layer.receive([channel], block=True)
        if name is not None:
            return content
    raise AssertionError(f"nothing arrived on {channel} within {timeout}s")


def hello_request(reply_channel):
    """An ``http.request`` for the test project's hello view."""
    return {"reply_channel": reply_channel, "http_version": "1.1", "method": "GET",
            "path": "/hello/", "query_string": b"", "headers": [[b"host", b"testserver"]]}


def test_routes_messages_to_consumers_with_kwargs(layer):
    calls = queue.Queue()
    make_router(layer, [route("test.work", lambda m, **kw: calls.put((m["n"], kw)),
                              path=r"^/(?P<room>\w+)/$")])
    with RunningWorker(Worker(layer, signal_handlers=False)):
        layer.send("test.work", {"n": 1, "path": "/lobby/"})
        assert calls.get(timeout=WAIT) == (1, {"room": "lobby"})


def test_survives_consumer_errors_and_drops_their_sends(layer, caplog):
    def consumer(message):
        Channel("test.out").send({"n": message["n"]})
        if message["n"] == 1:
            raise RuntimeError("consumer broke")
    make_router(layer, [route("test.work", consumer)])
    with RunningWorker(Worker(layer, signal_handlers=False)):
        layer.send("test.work", {"n": 1})
        layer.send("test.work", {"n": 2})
        assert receive(layer, "test.out") == {"n": 2}
    assert "consumer broke" in caplog.text and "1 queued sends dropped" in caplog.text
    assert layer.receive(["test.out"]) == (None, None)


def test_deny_connection_rejects_the_handshake(layer):
    def deny(message):
        message.reply_channel.send({"accept": True})  # dropped: the consumer raised
        raise DenyConnection()
    make_router(layer, [route("websocket.connect", deny)])
    with RunningWorker(Worker(layer, signal_handlers=False)):
        layer.send("websocket.connect", {"reply_channel": "websocket.send.P!c", "path": "/"})
        assert receive(layer, "websocket.send.P!") == {"close": True}
        assert layer.receive(["websocket.send.P!"]) == (None, None)


def test_deny_connection_outside_connect_does_not_kill_the_worker(layer, caplog):
    handled = queue.Queue()

    def consumer(message):
        if message["n"] == 1:
            raise DenyConnection()
        handled.put(message["n"])
    make_router(layer, [route("websocket.receive", consumer)])
    with RunningWorker(Worker(layer, signal_handlers=False)) as worker:
        layer.send("websocket.receive", {"reply_channel": "websocket.send.P!c", "n": 1})
        layer.send("websocket.receive", {"reply_channel": "websocket.send.P!c", "n": 2})
        # The message after the bad raise is still handled: the loop survived.
        assert handled.get(timeout=WAIT) == 2
        assert worker.messages_handled == 2
    assert "only means something on websocket.connect" in caplog.text
    assert layer.receive(["websocket.send.P!"]) == (None, None)


def test_channel_socket_exceptions_run_themselves(layer):
    def close(message):
        raise WebsocketCloseException(4000)
    make_router(layer, [route("websocket.receive", close)])
    with RunningWorker(Worker(layer, signal_handlers=False)):
        layer.send("websocket.receive", {"reply_channel": "websocket.send.P!c", "text": "x"})
        assert receive(layer, "websocket.send.P!") == {"close": 4000}


def test_failing_channel_socket_exception_is_logged(layer, caplog):
    class Broken(ChannelSocketException):
        def run(self, message):
            raise OSError("cannot run")
    done = threading.Event()

    def consumer(message):
        if message.get("last"):
            done.set()
            return
        raise Broken()
    make_router(layer, [route("test.work", consumer)])
    with RunningWorker(Worker(layer, signal_handlers=False)):
        layer.send("test.work", {})
        layer.send("test.work", {"last": True})
        assert done.wait(WAIT)
    assert "Broken raised by" in caplog.text


def test_consume_later_requeues_until_it_succeeds(layer):
    attempts = queue.Queue()

    def consumer(message):
        attempts.put(message.get("__retries__", 0))
        if message.get("__retries__", 0) < 2:
            raise ConsumeLater()
        Channel("test.out").send({"done": True})
    make_router(layer, [route("test.work", consumer)])
    with RunningWorker(Worker(layer, signal_handlers=False)):
        layer.send("test.work", {})
        assert receive(layer, "test.out") == {"done": True}
    assert [attempts.get_nowait() for _ in range(3)] == [0, 1, 2]


def test_consume_later_is_bounded_and_last_try_is_doomed(layer, caplog):
    attempts = queue.Queue()

    def consumer(message):
        attempts.put(getattr(message, "__doomed__", False))
        raise ConsumeLater()
    make_router(layer, [route("test.work", consumer)])
    with RunningWorker(Worker(layer, signal_handlers=False, message_retries=3)):
        layer.send("test.work", {})
        seen = [attempts.get(timeout=WAIT) for _ in range(4)]
        with pytest.raises(queue.Empty):
            attempts.get(timeout=0.3)
    assert seen == [False, False, False, True]
    assert "deferred more than 3 times" in caplog.text


def test_consumer_runs_inside_request_and_consumer_signals(layer):
    events = []

    def recorder(name):
        def receiver(**kwargs):
            events.append(name)
        return receiver
    receivers = {name: recorder(name) for name in
                 ("request_started", "consumer_started", "consumer_finished", "request_finished")}
    signals = {"request_started": request_started, "consumer_started": consumer_started,
               "consumer_finished": consumer_finished, "request_finished": request_finished}
    for name, receiver in receivers.items():
        signals[name].connect(receiver)
    done = threading.Event()

    def consumer(message):
        events.append("consumer")
    make_router(layer, [route("test.work", consumer)])
    try:
        request_finished.connect(lambda **kw: done.set(), weak=False, dispatch_uid="t-done")
        with RunningWorker(Worker(layer, signal_handlers=False)):
            layer.send("test.work", {})
            assert done.wait(WAIT)
    finally:
        request_finished.disconnect(dispatch_uid="t-done")
        for name, receiver in receivers.items():
            signals[name].disconnect(receiver)
    assert events == ["request_started", "consumer_started", "consumer",
                      "consumer_finished", "request_finished"]


def test_failing_signal_receiver_does_not_stop_the_worker(layer, caplog):
    handled = queue.Queue()

    def broken_receiver(**kwargs):
        raise RuntimeError("receiver broke")
    consumer_finished.connect(broken_receiver)
    make_router(layer, [route("test.work", lambda m: handled.put(m["n"]))])
    try:
        with RunningWorker(Worker(layer, signal_handlers=False)):
            layer.send("test.work", {"n": 1})
            layer.send("test.work", {"n": 2})
            assert {handled.get(timeout=WAIT), handled.get(timeout=WAIT)} == {1, 2}
    finally:
        consumer_finished.disconnect(broken_receiver)
    assert "receiver broke" in caplog.text


def test_unrouted_message_is_logged_and_dropped(layer, caplog):
    handled = queue.Queue()
    make_router(layer, [route("test.work", lambda m: handled.put(m["path"]), path="^/ok")])
    with RunningWorker(Worker(layer, signal_handlers=False)):
        layer.send("test.work", {"path": "/nope"})
        layer.send("test.work", {"path": "/ok"})
        assert handled.get(timeout=WAIT) == "/ok"
    assert "Could not find a consumer for a message on test.work" in caplog.text


def test_channel_filters(layer):
    make_router(layer, [route(["a.one", "a.two", "b.one"], lambda m: None)])
    worker = Worker(layer, only_channels=["a.*"], exclude_channels=["*.two"])
    assert worker.apply_channel_filters(layer.router.channels) == ["a.one"]
    assert Worker(layer).apply_channel_filters(layer.router.channels) == [
        "a.one", "a.two", "b.one"]


def test_no_channels_left_returns_at_once(layer, caplog):
    make_router(layer, [route("a.one", lambda m: None)])
    Worker(layer, signal_handlers=False, only_channels=["zzz"]).run()
    assert "No channels to listen on" in caplog.text


def test_ready_sends_worker_ready(layer):
    senders = []

    def receiver(sender, **kwargs):
        senders.append(sender)
    worker_ready.connect(receiver)
    try:
        worker = Worker(layer)
        worker.ready()
    finally:
        worker_ready.disconnect(receiver)
    assert senders == [worker]


def test_stop_finishes_the_message_in_hand(layer):
    started, release = threading.Event(), threading.Event()
    finished = queue.Queue()

    def slow(message):
        started.set()
        release.wait(WAIT)
        finished.put(message["n"])
    make_router(layer, [route("test.work", slow)])
    worker = Worker(layer, signal_handlers=False)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        layer.send("test.work", {"n": 1})
        layer.send("test.work", {"n": 2})
        assert started.wait(WAIT) and worker.in_job
        worker.stop()
        release.set()
        thread.join(WAIT)
        assert not thread.is_alive()
    finally:
        worker.stop()
        release.set()
        thread.join(WAIT)
    assert finished.get_nowait() == 1
    # The second message was never taken.
    assert layer.receive(["test.work"]) == ("test.work", {"n": 2})


def test_worker_group_says_once_what_it_listens_on(layer, caplog):
    handled = queue.Queue()
    make_router(layer, [route("test.work", lambda m: handled.put(m["n"]))])
    group = WorkerGroup(layer, n_threads=3, signal_handlers=False)
    with caplog.at_level(logging.INFO, logger="channels.worker"), RunningWorker(group):
        layer.send("test.work", {"n": 1})
        assert handled.get(timeout=WAIT) == 1
    lines = [r.getMessage() for r in caplog.records if "Listening on channels" in r.getMessage()]
    assert lines == ["Listening on channels test.work (3 threads)"]


def test_worker_group_runs_consumers_in_parallel(layer):
    barrier = threading.Barrier(3, timeout=WAIT)
    passed = queue.Queue()

    def consumer(message):
        barrier.wait()  # only returns once three consumers run at the same time
        passed.put(threading.current_thread().name)
    make_router(layer, [route("test.work", consumer)])
    group = WorkerGroup(layer, n_threads=3, signal_handlers=False)
    with RunningWorker(group):
        for n in range(3):
            layer.send("test.work", {"n": n})
        names = {passed.get(timeout=WAIT) for _ in range(3)}
    assert len(names) == 3
    assert all(not thread.is_alive() for thread in group.threads)


def test_receive_errors_back_off_and_recover(layer, caplog):
    class FlakyLayer(ChannelLayerWrapper):
        failures = 2

        def receive(self, channels, block=False):
            if self.failures:
                self.failures -= 1
                raise ConnectionError("layer down")
            return super().receive(channels, block)
    flaky = FlakyLayer(layer.channel_layer, "default", [])
    handled = queue.Queue()
    make_router(flaky, [route("test.work", lambda m: handled.put(m["n"]))])
    worker = Worker(flaky, signal_handlers=False)
    worker.receive_error_backoff = (0.01, 0.05)
    flaky.send("test.work", {"n": 7})
    with RunningWorker(worker):
        assert handled.get(timeout=WAIT) == 7
    assert caplog.text.count("Receiving from the channel layer failed") == 2


def test_worker_on_redis(redis_url, unique_prefix):
    from channels.layers.redis import RedisChannelLayer

    raw = RedisChannelLayer(hosts=[redis_url], prefix=unique_prefix)
    wrapper = ChannelLayerWrapper(raw, "redis", [])

    def echo(message):
        message.reply_channel.send({"echo": message["n"]})
    make_router(wrapper, [route("test.echo", echo)])
    try:
        with RunningWorker(WorkerGroup(wrapper, n_threads=2, signal_handlers=False)):
            for n in range(20):
                wrapper.send("test.echo", {"n": n, "reply_channel": "test.reply.P!x"})
            got = sorted(receive(wrapper, "test.reply.P!")["echo"] for _ in range(20))
        assert got == list(range(20))
    finally:
        raw.flush()
        raw.close()


def test_batch_receive_handles_every_message(layer):
    handled = queue.Queue()
    make_router(layer, [route("test.work", lambda m: handled.put(m["n"]))])
    for n in range(10):
        layer.send("test.work", {"n": n})
    with RunningWorker(Worker(layer, signal_handlers=False, batch_size=4)):
        assert sorted(handled.get(timeout=WAIT) for _ in range(10)) == list(range(10))


def _stop_while_first_of_five_runs(layer, worker) -> list[int]:
    """Five messages in one batch; the worker is stopped while the first one's consumer runs.
    Returns the numbers handled, in order."""
    started, release = threading.Event(), threading.Event()
    handled = queue.Queue()

    def consumer(message):
        if message["n"] == 0:
            started.set()
            release.wait(WAIT)
        handled.put(message["n"])
    make_router(layer, [route("test.work", consumer)])
    for n in range(5):
        layer.send("test.work", {"n": n})
    with RunningWorker(worker):
        assert started.wait(WAIT)
        worker.stop()
        release.set()
    return [handled.get_nowait() for _ in range(handled.qsize())]


def test_stop_mid_batch_gives_unstarted_messages_back(layer):
    worker = Worker(layer, signal_handlers=False, batch_size=5)
    assert _stop_while_first_of_five_runs(layer, worker) == [0]
    returned = [layer.receive(["test.work"])[1]["n"] for _ in range(4)]
    assert sorted(returned) == [1, 2, 3, 4]


def test_stop_mid_automatic_batch_finishes_it_in_order(layer):
    worker = Worker(layer, signal_handlers=False)  # automatic batch size
    worker._batch_limit = 5  # as if quick consumers had grown it
    assert _stop_while_first_of_five_runs(layer, worker) == [0, 1, 2, 3, 4]
    assert layer.receive(["test.work"]) == (None, None)


def test_batch_size_must_be_positive(layer):
    with pytest.raises(ValueError, match="batch_size"):
        Worker(layer, batch_size=0)


# -- a batch: one request lifecycle, replies held for the next receive --------------------


def test_a_batch_runs_inside_one_request_and_a_failure_ends_it_at_once(layer, caplog):
    events = []

    def consumer(message):
        events.append(message["n"])
        if message["n"] == 2:
            raise RuntimeError("consumer broke")

    def on_started(**kwargs):
        events.append("started")

    def on_finished(**kwargs):
        events.append("finished")
    make_router(layer, [route("test.work", consumer)])
    for n in range(5):
        layer.send("test.work", {"n": n})
    request_started.connect(on_started)
    request_finished.connect(on_finished)
    try:
        worker = Worker(layer, signal_handlers=False, batch_size=5)
        batch = layer.receive_batch(["test.work"], 5)
        assert len(batch) == 5
        with caplog.at_level(logging.ERROR):
            worker._handle_batch(batch)
    finally:
        request_started.disconnect(on_started)
        request_finished.disconnect(on_finished)
    # The checks run once for the batch, and again right after the consumer that failed.
    assert events == ["started", 0, 1, 2, "finished", "started", 3, 4, "finished"]
    assert "consumer broke" in caplog.text


def test_a_batch_closes_the_database_connection_a_consumer_used(layer, tmp_path,
                                                               django_db_blocker):
    from django.db import connections

    alias = "worker_batch_db"
    connections.settings[alias] = connections.configure_settings(
        {"default": {}, alias: {"ENGINE": "django.db.backends.sqlite3",
                                "NAME": str(tmp_path / "w.sqlite3"), "CONN_MAX_AGE": 0}})[alias]
    seen = []

    def consumer(message):
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
        seen.append(connections[alias].connection is not None)  # open while the batch runs

    def after_request(**kwargs):
        # Connected after Django's close_old_connections, so it sees what that left.
        seen.append("closed" if connections[alias].connection is None else "left open")
    make_router(layer, [route("test.work", consumer)])
    for n in range(3):
        layer.send("test.work", {"n": n})
    request_finished.connect(after_request)
    try:
        with django_db_blocker.unblock():
            worker = Worker(layer, signal_handlers=False, batch_size=3)
            worker._handle_batch(layer.receive_batch(["test.work"], 3))
    finally:
        request_finished.disconnect(after_request)
        connections[alias].close()
        del connections.settings[alias]
    assert seen == [True, True, True, "closed"]


def test_replies_held_in_a_batch_go_out_before_a_send_that_does_not_wait(layer):
    # Message 0 replies through the buffer (held for the next receive); message 1 sends
    # immediately on the same channel: the held reply must still arrive first.
    def consumer(message):
        if message["n"] == 0:
            Channel("test.out").send({"n": "held"})
        else:
            Channel("test.out").send({"n": "immediate"}, immediately=True)
    make_router(layer, [route("test.work", consumer)])
    for n in range(2):
        layer.send("test.work", {"n": n})
    worker = Worker(layer, signal_handlers=False, batch_size=2)
    worker._handle_batch(layer.receive_batch(["test.work"], 2))
    assert [layer.receive(["test.out"])[1]["n"] for _ in range(2)] == ["held", "immediate"]
    assert worker._deferred == []


def test_replies_held_in_a_batch_go_out_before_a_group_send(layer):
    def consumer(message):
        if message["n"] == 0:
            Channel("test.out").send({"n": "reply"})
        else:
            Group("watchers").send({"n": "group"})
    make_router(layer, [route("test.work", consumer)])
    layer.group_add("watchers", "test.out")
    for n in range(2):
        layer.send("test.work", {"n": n})
    worker = Worker(layer, signal_handlers=False, batch_size=2)
    worker._handle_batch(layer.receive_batch(["test.work"], 2))
    assert [layer.receive(["test.out"])[1]["n"] for _ in range(2)] == ["reply", "group"]


def test_on_redis_a_batch_sends_its_replies_with_the_next_receive(redis_url, unique_prefix):
    with counting_echo_worker(redis_url, unique_prefix, batch_size=10) as (client, counting,
                                                                          worker):
        for n in range(30):
            client.send("test.echo", {"n": n, "reply_channel": "test.reply.P!x"})
        writes = counting.writes
        with RunningWorker(worker):
            got = [receive(client, "test.reply.P!")["echo"] for _ in range(30)]
            used = counting.writes - writes
    assert got == list(range(30))  # order kept across batches
    # Three batches of ten, each one write with the next receive (plus a script load and
    # idle pops after the last): 30+ if each reply went on its own.
    assert used <= 10, f"{used} round trips for 30 requests in batches of 10"


def test_the_worker_grows_its_batches_for_quick_consumers_and_shrinks_them_for_slow(layer):
    worker = Worker(layer, signal_handlers=False)
    assert worker._batch_limit == 1  # starts one at a time
    for _ in range(20):
        worker._adapt_batch_limit(0.0001)
    assert worker._batch_limit == worker.max_batch_size
    for _ in range(3):
        worker._adapt_batch_limit(0.05)  # a consumer that waits on something slow
    assert worker._batch_limit == 1
    assert Worker(layer, batch_size=4)._batch_limit == 4  # a number given is kept


def test_http_requests_fire_request_signals_once(layer):
    started, finished = [], []

    def on_started(**kwargs):
        started.append(1)

    def on_finished(**kwargs):
        finished.append(1)
    make_router(layer, [])
    layer.router.check_default()
    request_started.connect(on_started)
    request_finished.connect(on_finished)
    try:
        with RunningWorker(Worker(layer, signal_handlers=False)):
            layer.send("http.request", hello_request("http.response.P!c"))
            reply = receive(layer, "http.response.P!")
    finally:
        request_started.disconnect(on_started)
        request_finished.disconnect(on_finished)
    assert reply["status"] == 200 and reply["content"] == b"Hello, world"
    assert (len(started), len(finished)) == (1, 1)


# -- a consumer's replies go out with the next receive -------------------------------------


def test_replies_of_the_last_message_go_out_even_when_the_worker_stops_after_it(layer):
    worker = Worker(layer, signal_handlers=False)

    def reply_then_stop(message):
        message.reply_channel.send({"echo": message["n"]})
        worker.stop()  # run() ends after this message: nothing may be left unsent
    make_router(layer, [route("test.echo", reply_then_stop)])
    layer.send("test.echo", {"n": 7, "reply_channel": "test.reply.S!a"})
    thread = threading.Thread(target=worker.run)
    thread.start()
    thread.join(WAIT)
    assert not thread.is_alive(), "worker did not stop"
    assert layer.receive(["test.reply.S!"]) == ("test.reply.S!a", {"echo": 7})


@contextlib.contextmanager
def counting_echo_worker(redis_url, prefix, batch_size=None):
    """A worker echoing ``test.echo`` on Redis, whose layer counts the writes it makes, and a
    client layer of its own (not counted); yields ``(client, counting class)``."""
    from channels.layers.redis import RedisChannelLayer
    from tests.redis_counting import CountingConnection

    class Counting(CountingConnection):  # a counter of this test's own
        writes = 0

    raw = RedisChannelLayer(hosts=[redis_url], prefix=prefix,
                            connection_kwargs={"connection_class": Counting})
    wrapper = ChannelLayerWrapper(raw, "redis", [])
    client = RedisChannelLayer(hosts=[redis_url], prefix=prefix)

    def echo(message):
        message.reply_channel.send({"echo": message["n"]})
    make_router(wrapper, [route("test.echo", echo)])
    try:
        yield client, Counting, Worker(wrapper, signal_handlers=False, batch_size=batch_size)
    finally:
        client.close()
        raw.flush()
        raw.close()


def test_on_redis_a_reply_and_the_next_receive_share_one_round_trip(redis_url, unique_prefix):
    with counting_echo_worker(redis_url, unique_prefix) as (client, counting, worker):
        # Queued up front, as under load: each reply rides with the next request's pop.
        for n in range(30):
            client.send("test.echo", {"n": n, "reply_channel": "test.reply.P!x"})
        writes = counting.writes
        with RunningWorker(worker):
            got = [receive(client, "test.reply.P!")["echo"] for _ in range(30)]
            used = counting.writes - writes
    assert got == list(range(30))
    # One write per request (its reply with the next pop), give or take the first pop, a
    # script load and idle pops after the last: 60+ if replies and pops went separately.
    assert used <= 38, f"{used} round trips for 30 requests"


def test_on_redis_an_idle_worker_sends_each_reply_with_its_blocking_receive(redis_url,
                                                                          unique_prefix):
    # Requests one at a time (each after the last reply): the reply and the next blocking pop
    # still share a write, so the worker writes once per request, not three times.
    with counting_echo_worker(redis_url, unique_prefix) as (client, counting, worker):
        with RunningWorker(worker):
            client.send("test.echo", {"n": -1, "reply_channel": "test.reply.P!y"})  # warm up
            assert receive(client, "test.reply.P!")["echo"] == -1
            writes = counting.writes
            got = []
            for n in range(20):
                client.send("test.echo", {"n": n, "reply_channel": "test.reply.P!y"})
                got.append(receive(client, "test.reply.P!")["echo"])
            used = counting.writes - writes
    assert got == list(range(20))
    # 20, plus a blocking pop that timed out if the machine stalled for a second.
    assert used <= 24, f"{used} round trips for 20 requests"


def test_on_redis_a_deferred_reply_to_a_full_channel_is_retried_until_it_fits(
        redis_url, unique_prefix):
    from channels.layers.redis import RedisChannelLayer

    raw = RedisChannelLayer(hosts=[redis_url], prefix=unique_prefix,
                            channel_capacity={"test.reply.F!*": 1})
    wrapper = ChannelLayerWrapper(raw, "redis", [])
    handled = threading.Event()

    def echo(message):
        message.reply_channel.send({"echo": message["n"]})
        handled.set()
    make_router(wrapper, [route("test.echo", echo)])
    try:
        wrapper.send("test.reply.F!a", {"echo": "first"})  # the socket is now full
        with RunningWorker(Worker(wrapper, signal_handlers=False)):
            wrapper.send("test.echo", {"n": 1, "reply_channel": "test.reply.F!a"})
            assert handled.wait(WAIT)
            assert receive(wrapper, "test.reply.F!") == {"echo": "first"}  # room again
            assert receive(wrapper, "test.reply.F!") == {"echo": 1}
    finally:
        raw.flush()
        raw.close()


def test_a_response_is_sent_even_if_request_finished_then_fails(layer, caplog):
    # The response was complete before the failing receiver ran: holding it for the next
    # receive must not turn that late failure into a lost response.
    def failing(**kwargs):
        raise RuntimeError("cache close failed")
    make_router(layer, [])
    layer.router.check_default()
    request_finished.connect(failing)
    try:
        with caplog.at_level(logging.ERROR), RunningWorker(Worker(layer, signal_handlers=False)):
            layer.send("http.request", hello_request("http.response.P!f"))
            reply = receive(layer, "http.response.P!")
    finally:
        request_finished.disconnect(failing)
    assert reply["status"] == 200 and reply["content"] == b"Hello, world"
    assert "cache close failed" in caplog.text


class SendReceiveOnlyLayer:
    """An ASGI 1 layer as third parties wrote them: send and receive, nothing more."""

    from channels.layers.base import ChannelFull

    extensions: list = []

    def __init__(self):
        self.queues: dict = {}
        self.lock = threading.Lock()

    def send(self, channel, message):
        with self.lock:
            self.queues.setdefault(channel, []).append(message)

    def receive(self, channels, block=False):
        deadline = time.monotonic() + (0.2 if block else 0)
        while True:
            with self.lock:
                for channel in channels:
                    if self.queues.get(channel):
                        return channel, self.queues[channel].pop(0)
            if time.monotonic() >= deadline:
                return None, None
            time.sleep(0.005)  # this stand-in layer has no wake-up event of its own


def test_a_layer_with_only_send_and_receive_still_gets_every_reply():
    wrapper = ChannelLayerWrapper(SendReceiveOnlyLayer(), "plain", [])

    def echo(message):
        message.reply_channel.send({"echo": message["n"]})
    make_router(wrapper, [route("test.echo", echo)])
    with RunningWorker(Worker(wrapper, signal_handlers=False)):
        for n in range(5):
            wrapper.send("test.echo", {"n": n, "reply_channel": "test.reply"})
        got = [receive(wrapper, "test.reply")["echo"] for _ in range(5)]
    assert got == list(range(5))
