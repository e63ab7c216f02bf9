"""``manage.py setitem NAME VALUE``: change a dashboard item from outside any web request.

The save goes through the ORM like any other, so the binding announces it to every open
dashboard: with the Redis layer this works from any process (a shell, cron, another machine);
with the in-memory layer only the process that saves can reach its own sockets.
"""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from example_project.dashboard.models import Item


class Command(BaseCommand):
    help = "Set (or create) a dashboard item; open dashboards show it at once."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("value", type=int)

    def handle(self, name, value, **options):
        item = Item.objects.filter(name=name).first() or Item(name=name)
        created = item.pk is None
        item.value = value
        try:
            item.full_clean()
        except ValidationError as exc:
            raise CommandError("; ".join(f"{field}: {' '.join(messages)}"
                                         for field, messages in exc.message_dict.items()))
        item.save()
        self.stdout.write(f"{'created' if created else 'updated'} {item}")
