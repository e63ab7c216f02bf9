"""Sphinx configuration: the pages are Markdown (MyST-Parser), the API pages are autodoc.

Build from the repository root: ``.venv/bin/sphinx-build -W --keep-going -b html docs
docs/_build/html``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import django
from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# autodoc imports the modules it documents, and the Django side (sessions, auth, the delay
# server's model, the test case classes) needs configured settings and a loaded app registry.
# Nothing here touches a database or a Redis server: importing is all autodoc does.
if not settings.configured:
    settings.configure(
        SECRET_KEY="documentation-build-only",
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "channels",
            "channels.delay",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        CHANNEL_LAYERS={
            "default": {
                "BACKEND": "channels.layers.inmemory.InMemoryChannelLayer",
                "ROUTING": [],
            },
        },
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()

import channels  # noqa: E402 - needs the path set above

project = "channels"
author = "the channels authors"
copyright = "the channels authors"
release = channels.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_inventories", "Thumbs.db", ".DS_Store"]

# `[text](page.md#a-heading)` links between pages need anchors for the headings.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# Docstrings are reStructuredText with ``literals``, read as they are (no Google or NumPy
# sections, so no napoleon).
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True

# Intersphinx, online and offline. Each project lists two places for its inventory: first the
# published one (None = `<url>/objects.inv`; Django publishes its own under `_objects/`), then
# a copy in `_inventories/`. With a network the published inventory is used and the copy is
# never read; without one (the CI machines have none) Sphinx falls back to the copy and logs
# the failed fetch at INFO level only, so `-W` stays green and the links are the same either
# way: every link points at the published documentation. Where the copies come from:
#   python-3.11.inv  the objects.inv of Debian's `python3.11-doc` package (Python 3.11.2),
#                    the oldest Python this package supports;
#   django-5.2.inv   built from the `docs/` folder of Django 5.2.19's source distribution on
#                    PyPI with Sphinx's `dirhtml` builder, which gives the same
#                    `ref/settings/#...` addresses as docs.djangoproject.com.
# Refresh them when moving to another Python or Django documentation version.
# intersphinx_timeout bounds a fetch on a network that drops packets instead of refusing.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3.11/", (None, "_inventories/python-3.11.inv")),
    "django": (
        "https://docs.djangoproject.com/en/5.2/",
        ("https://docs.djangoproject.com/en/5.2/_objects/", "_inventories/django-5.2.inv"),
    ),
}
intersphinx_timeout = 10

# Object entries in the page contents list by their own name, not Class.method.
toc_object_entries_show_parents = "hide"

html_theme = "furo"
html_title = f"channels {release}"
html_static_path: list[str] = []
