"""The delay server: an optional app that holds messages sent to ``asgi.delay`` in the database
and sends each to its destination channel once its delay has passed (``manage.py rundelay``)."""
