"""The Django app: makes ``runserver`` ours even with staticfiles listed first, and registers
data bindings once models are ready."""

from __future__ import annotations

from django.apps import AppConfig, apps


class ChannelsConfig(AppConfig):
    name = "channels"
    label = "channels"
    verbose_name = "Channels"

    def ready(self) -> None:
        from django.conf import settings

        if getattr(settings, "CHANNELS_LEGACY_DJANGO_NAMES", True):
            from channels.legacy_django import restore_removed_names

            restore_removed_names()
        self._take_over_staticfiles_runserver()
        # Bindings live in another module; register them only when it exists.
        try:
            from channels.binding.base import BindingMetaclass
        except ImportError:
            return
        BindingMetaclass.register_all()

    @staticmethod
    def _take_over_staticfiles_runserver() -> None:
        """Django picks the ``runserver`` of the first app in INSTALLED_APPS that has one, and
        Channels 1.1 projects list ``django.contrib.staticfiles`` before ``channels``. Our
        command already offers staticfiles' options (``--nostatic``, ``--insecure``), so the
        staticfiles command module is pointed at it instead of being re-based at runtime."""
        if not apps.is_installed("django.contrib.staticfiles"):
            return
        from django.contrib.staticfiles.management.commands import runserver as static_runserver

        from channels.management.commands.runserver import Command

        static_runserver.Command = Command
