"""A third-party layer whose ``receive`` answers ``(None, None)`` at once even with
``block=True`` (ASGI 1 allows it): the worker pauses between empty answers instead of asking
hundreds of thousands of times a second, and still handles messages promptly."""

from __future__ import annotations

import threading
import time

from channels.asgi import ChannelLayerWrapper
from channels.routing import route
from channels.worker import Worker
from tests.compat.sync_only_layers import DictLayer

WAIT = 5


class RunningWorker:
    def __init__(self, worker: Worker):
        self.worker = worker
        self.thread = threading.Thread(target=worker.run, daemon=True)

    def __enter__(self) -> Worker:
        self.thread.start()
        return self.worker

    def __exit__(self, *exc_info) -> None:
        self.worker.stop()
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "worker did not stop"


def _worker(layer: DictLayer, consumer) -> Worker:
    wrapper = ChannelLayerWrapper(layer, "default", [route("compat.job", consumer)])
    return Worker(wrapper, signal_handlers=False)


def test_an_idle_worker_asks_a_non_blocking_layer_only_a_bounded_number_of_times():
    layer = DictLayer()
    with RunningWorker(_worker(layer, lambda message: None)):
        time.sleep(0.1)  # let the back-off reach its ceiling
        before = layer.receive_calls
        time.sleep(0.5)  # the interval being measured
        during = layer.receive_calls - before
    # At the 50 ms ceiling that is about 10 calls; without pauses it was ~750,000.
    assert 2 <= during <= 40, during


class TimedDictLayer(DictLayer):
    """Records when each receive call was made."""

    def __init__(self):
        super().__init__()
        self.call_times: list[float] = []

    def receive(self, channels, block=False):
        self.call_times.append(time.monotonic())
        return super().receive(channels, block)


def test_a_message_after_a_quiet_spell_is_handled_promptly_and_resets_the_pause():
    layer = TimedDictLayer()
    handled = threading.Event()
    times: list[float] = []

    def consumer(message):
        times.append(time.monotonic())
        handled.set()

    with RunningWorker(_worker(layer, consumer)):
        time.sleep(0.3)  # quiet: the pause is at its ceiling
        sent = time.monotonic()
        layer.send("compat.job", {"n": 1})
        assert handled.wait(WAIT)
        # Bounded by the pause ceiling (50 ms), with room for a slow machine.
        assert times[0] - sent < 0.5
        time.sleep(0.2)
    after = [moment for moment in layer.call_times if moment > times[0]]
    # After a message the pauses start small again: the second empty receive follows the
    # first by about 5 ms, not by the 50 ms ceiling.
    assert len(after) >= 2 and after[1] - after[0] < 0.03, after[:3]


def test_a_layer_that_blocks_is_never_paused():
    """A layer honouring ``block`` waits inside ``receive``; the worker adds nothing."""

    class BlockingDictLayer(DictLayer):
        def receive(self, channels, block=False):
            channel, message = super().receive(channels, block)
            if channel is None and block:
                time.sleep(0.02)  # its own (short) blocking timeout
            return channel, message

    layer = BlockingDictLayer()
    with RunningWorker(_worker(layer, lambda message: None)):
        time.sleep(0.05)
        before = layer.receive_calls
        time.sleep(0.5)
        during = layer.receive_calls - before
    # 0.5 s of 20 ms receives is about 25 calls; pauses added after each (5 ms doubling to
    # 50 ms) would leave about 8.
    assert during >= 15, during


def test_batch_size_falls_back_to_single_receives_on_a_layer_without_receive_batch():
    layer = DictLayer()
    handled = threading.Event()
    wrapper = ChannelLayerWrapper(layer, "default",
                                  [route("compat.job", lambda message: handled.set())])
    with RunningWorker(Worker(wrapper, signal_handlers=False, batch_size=4)):
        layer.send("compat.job", {"n": 1})
        assert handled.wait(WAIT)
