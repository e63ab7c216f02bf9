"""WSGI entry of the test project (the benchmark's gunicorn baseline serves the same views)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.core.project.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
