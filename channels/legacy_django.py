"""Names that Channels 1.1-era projects import from Django and that Django has since removed.

A Channels 1.1 project is, almost by definition, a Django 1.x project: its ``urls.py`` says
``from django.conf.urls import url`` (removed in Django 4.0). "Runs unchanged" would be false
for nearly every such project if we stopped at our own API, so the ``channels`` app restores
the few removed names as aliases of their documented replacements, only where Django no longer
has them. ``CHANNELS_LEGACY_DJANGO_NAMES = False`` in settings turns this off.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("channels.legacy_django")


def restore_removed_names() -> list[str]:
    """Put back removed Django names that old projects import; returns the names restored."""
    import django.conf.urls as conf_urls
    from django.urls import include, re_path

    restored = []
    if not hasattr(conf_urls, "url"):
        # Django 4.0 removed url(); re_path() is the documented, behaviour-identical replacement.
        conf_urls.url = re_path
        restored.append("django.conf.urls.url")
    if not hasattr(conf_urls, "include"):
        conf_urls.include = include
        restored.append("django.conf.urls.include")
    if restored:
        logger.debug("restored removed Django names for legacy projects: %s", ", ".join(restored))
    return restored
