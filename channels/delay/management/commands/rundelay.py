"""``manage.py rundelay``: the delay server process (``channels.delay``)."""

from __future__ import annotations

import math
from typing import Any

from django.core.management import BaseCommand, CommandError

from channels import DEFAULT_CHANNEL_LAYER
from channels.asgi import InvalidChannelLayerError, channel_layers
from channels.delay.worker import Worker
from channels.log import setup_logger


class Command(BaseCommand):
    help = "Runs the delay server: sends messages given to asgi.delay once their delay has passed."
    leave_locale_alone = True

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--layer", action="store", dest="layer", default=DEFAULT_CHANNEL_LAYER,
            help="Channel layer alias to use, if not the default.",
        )
        parser.add_argument(
            "--sleep", action="store", dest="sleep", default=1, type=float,
            help="Longest wait in seconds between two looks at the database (default 1): how "
                 "late a row stored by another delay server may be found.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.logger = setup_logger("channels", options.get("verbosity", 1))
        if not (options["sleep"] > 0 and math.isfinite(options["sleep"])):
            raise CommandError(f"--sleep must be a positive number of seconds, got "
                               f"{options['sleep']}")
        try:
            channel_layer = channel_layers[options["layer"]]
        except InvalidChannelLayerError as exc:
            raise CommandError(str(exc)) from exc
        if channel_layer.local_only():
            raise CommandError(
                "You cannot span multiple processes with the in-memory layer: nothing could "
                "send to this delay server. Change your settings to use a cross-process "
                "channel layer such as channels.layers.redis.RedisChannelLayer."
            )
        self.logger.info("Running delay server against channel layer %s", channel_layer)
        worker = Worker(channel_layer=channel_layer, database_sleep_duration=options["sleep"])
        try:
            worker.run()
        except KeyboardInterrupt:
            pass
        finally:
            channel_layer.close()
