"""A few items, so the dashboard has something to show after ``migrate``."""

from django.db import migrations

DEMO_ITEMS = [("visitors", 128), ("open orders", 7), ("builds queued", 2), ("errors today", 0)]


def create_items(apps, schema_editor):
    item_model = apps.get_model("dashboard", "Item")
    for name, value in DEMO_ITEMS:
        item_model.objects.get_or_create(name=name, defaults={"value": value})


class Migration(migrations.Migration):
    dependencies = [("dashboard", "0001_initial")]

    operations = [migrations.RunPython(create_items, migrations.RunPython.noop)]
