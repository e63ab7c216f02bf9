"""enforce_ordering with everything real: Redis layer, sessions in Redis, four worker threads."""

from __future__ import annotations

from channels import route
from channels.layers.redis import RedisChannelLayer
from channels.sessions import enforce_ordering, wait_channel_name


def test_strict_order_per_socket_with_redis_and_concurrent_workers(
        redis_url, unique_prefix, sessions_in_redis, default_layer, worker_threads,
        socket_traffic, order_recorder):
    recorder = order_recorder(sockets=5, per_socket=10 + 2)

    @enforce_ordering
    def consumer(message):
        recorder.record(message)
        message.reply_channel.send({"text": str(message["order"])})

    layer = RedisChannelLayer(hosts=[redis_url], prefix=unique_prefix, blocking_timeout=0.2)
    default_layer(layer, [route("websocket.connect", consumer),
                          route("websocket.receive", consumer),
                          route("websocket.disconnect", consumer)])
    traffic = socket_traffic(sockets=5, frames=10, disconnect=True, seed=11)
    worker_threads.start(4)
    traffic.send_all()
    recorder.wait()
    worker_threads.stop()
    every_order = list(range(traffic.messages_per_socket))
    for client in traffic.clients:
        assert recorder.runs[client.reply_channel] == every_order
        assert traffic.replies(client) == every_order
        waits = [wait_channel_name(client.reply_channel, order) for order in every_order]
        assert layer.receive(waits) == (None, None)  # nothing left waiting
