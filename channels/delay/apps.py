"""The ``channels.delay`` app: the ``DelayedMessage`` table and the ``rundelay`` command."""

from __future__ import annotations

from django.apps import AppConfig


class DelayConfig(AppConfig):
    name = "channels.delay"
    # Channels 1.1 labelled this app "channels.delay"; Django 3.2 and later refuse labels that
    # are not Python identifiers, so the label changed. The table keeps its 1.1 name (see
    # DelayedMessage.Meta), so rows a 1.1 deployment left behind are still delivered.
    label = "channels_delay"
    verbose_name = "Channels Delay"
    # The 1.1 table has an int primary key: a project's DEFAULT_AUTO_FIELD must not ask for a
    # migration of it.
    default_auto_field = "django.db.models.AutoField"
