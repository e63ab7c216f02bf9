"""``manage.py runworker``: a worker process (or several threads) for a cross-process layer."""

from __future__ import annotations

import gc
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management import BaseCommand, CommandError

from channels import DEFAULT_CHANNEL_LAYER
from channels.asgi import InvalidChannelLayerError, channel_layers
from channels.log import setup_logger
from channels.signals import worker_process_ready
from channels.worker import Worker, WorkerGroup


class Command(BaseCommand):
    help = "Runs a Channels worker: receives routed messages and runs their consumers."
    leave_locale_alone = True

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--layer", action="store", dest="layer", default=DEFAULT_CHANNEL_LAYER,
            help="Channel layer alias to use, if not the default.",
        )
        parser.add_argument(
            "--only-channels", action="append", dest="only_channels",
            help="Only listen on channels matching these globs (repeatable).",
        )
        parser.add_argument(
            "--exclude-channels", action="append", dest="exclude_channels",
            help="Do not listen on channels matching these globs (repeatable).",
        )
        parser.add_argument(
            "--threads", action="store", dest="threads", default=1, type=int,
            help="Number of worker threads in this process.",
        )
        parser.add_argument(
            "--batch-size", action="store", dest="batch_size", default=None, type=int,
            help="Messages taken per receive (default: up to 16, fewer when consumers are "
                 "slow; 1 takes one at a time).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.verbosity = options.get("verbosity", 1)
        self.logger = setup_logger("channels", self.verbosity)
        if options.get("batch_size") is not None and options["batch_size"] < 1:
            raise CommandError(f"--batch-size must be at least 1, got {options['batch_size']}")
        if options["threads"] < 1:
            raise CommandError(f"--threads must be at least 1, got {options['threads']}")
        try:
            self.channel_layer = channel_layers[options["layer"]]
        except InvalidChannelLayerError as exc:
            raise CommandError(str(exc)) from exc
        if self.channel_layer.local_only():
            raise CommandError(
                "You cannot span multiple processes with the in-memory layer (in-memory layer "
                "cannot be used across processes). Change your settings to use a cross-process "
                "channel layer such as channels.layers.redis.RedisChannelLayer."
            )
        self.channel_layer.router.check_default(http_consumer=self.get_http_consumer())
        self.logger.info("Running worker against channel layer %s", self.channel_layer)
        worker_kwargs = {
            "channel_layer": self.channel_layer,
            "callback": self.consumer_called if self.verbosity > 1 else None,
            "only_channels": options.get("only_channels"),
            "exclude_channels": options.get("exclude_channels"),
            "batch_size": options.get("batch_size"),
        }
        if options["threads"] > 1:
            worker: Worker = WorkerGroup(n_threads=options["threads"], **worker_kwargs)
        else:
            worker = Worker(**worker_kwargs)
        worker_process_ready.send(sender=worker)
        worker.ready()
        freeze_startup_objects()
        try:
            worker.run()
        except KeyboardInterrupt:
            pass

    def get_http_consumer(self) -> Any:
        """Static files too when DEBUG and staticfiles are on, as under runserver."""
        if settings.DEBUG and apps.is_installed("django.contrib.staticfiles"):
            from channels.staticfiles import StaticFilesConsumer

            return StaticFilesConsumer()
        return None

    def consumer_called(self, channel: str, message: Any) -> None:
        self.logger.debug("%s", channel)


def freeze_startup_objects() -> None:
    """Keep the garbage collector off what start-up built (Django, apps, middleware, routing).

    Those ~50,000 objects live as long as the worker, yet every full collection walks them all:
    39-62 ms with the worker stopped, a stall for every request in flight (the fixed-rate p99 of
    benchmarks/http_requests.py). Frozen, a full collection only sees what requests allocate.
    """
    gc.collect()
    gc.freeze()
