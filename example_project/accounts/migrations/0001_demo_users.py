"""Demo accounts, so the example can be tried right after ``migrate``: ``alice`` and ``bob``
(plain users) and ``admin`` (superuser), all with the password ``settings.DEMO_PASSWORD``.

FOR THE DEMO ONLY: the password is public. Created only when ``settings.EXAMPLE_DEMO_USERS``
is true (the default with DEBUG on); with it off, make users with ``manage.py createsuperuser``.
Existing users with these names are left alone; migrating back
(``manage.py migrate example_accounts zero``) deletes the three accounts.
"""

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import migrations

DEMO_USERS = [
    # username, is_staff and is_superuser
    ("alice", False),
    ("bob", False),
    ("admin", True),
]


def create_demo_users(apps, schema_editor):
    if not getattr(settings, "EXAMPLE_DEMO_USERS", False):
        return
    user_model = apps.get_model(settings.AUTH_USER_MODEL)
    # One hash for the three: the same password, and a hash costs most of a second.
    password = make_password(settings.DEMO_PASSWORD)
    for username, admin in DEMO_USERS:
        user_model.objects.get_or_create(username=username, defaults={
            "password": password, "is_staff": admin, "is_superuser": admin,
            "email": f"{username}@example.invalid",
        })


def remove_demo_users(apps, schema_editor):
    user_model = apps.get_model(settings.AUTH_USER_MODEL)
    user_model.objects.filter(username__in=[name for name, _ in DEMO_USERS]).delete()


class Migration(migrations.Migration):
    # The user table as it is today (usernames of 150 characters), not its first version.
    dependencies = [("auth", "0012_alter_user_first_name_max_length")]

    operations = [migrations.RunPython(create_demo_users, remove_demo_users)]
