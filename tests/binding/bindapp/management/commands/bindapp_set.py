"""``manage.py bindapp_set NAME VALUE``: change a value through the ORM from a plain process
(no worker), which must reach bound sockets through the channel layer alone.

``--serve`` keeps the process up and takes one change per stdin line, ``NAME VALUE ROOM
[rollback]``, answering ``done N pk=PK`` for the Nth line: tests change values from another
process without paying a Django start-up per change. ``--setup`` first migrates and creates
the ``admin`` superuser.
"""

import sys

from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from tests.binding.bindapp.models import IntegerValue


def set_value(name: str, value: int, room: str = "lobby", rollback: bool = False) -> int:
    with transaction.atomic():
        instance, _ = IntegerValue.objects.update_or_create(
            name=name, defaults={"value": value, "room": room})
        if rollback:
            transaction.set_rollback(True)
    return instance.pk


class Command(BaseCommand):
    help = "Create or update an IntegerValue (optionally in a transaction that rolls back)."

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?")
        parser.add_argument("value", nargs="?", type=int)
        parser.add_argument("--room", default="lobby")
        parser.add_argument("--rollback", action="store_true",
                            help="save inside a transaction, then roll it back")
        parser.add_argument("--serve", action="store_true",
                            help="take changes from stdin, one per line")
        parser.add_argument("--setup", action="store_true",
                            help="migrate and create the admin superuser first")

    def handle(self, name, value, room, rollback, serve, setup, **options):
        if setup:
            call_command("migrate", verbosity=0)
            User.objects.create_superuser("admin", "admin@example.com", "admin-pw")
        if not serve:
            if name is None or value is None:
                raise CommandError("give NAME and VALUE, or --serve")
            pk = set_value(name, value, room, rollback)
            self.stdout.write(f"{'rolled back' if rollback else 'saved'} {name}={value} "
                              f"pk={pk}")
            return
        self.stdout.write("ready", ending="\n")
        self.stdout.flush()
        for number, line in enumerate(sys.stdin, start=1):
            name, value, room, *flags = line.split()
            pk = set_value(name, int(value), room, rollback="rollback" in flags)
            self.stdout.write(f"done {number} pk={pk}")
            self.stdout.flush()
