"""Creates the ``DelayedMessage`` table, or adopts the one Channels 1.1 created.

Channels 1.1 made the same table under the app label "channels.delay", which Django no longer
accepts, so its migration record does not count for this app. A plain ``CreateModel`` would
then fail on a database upgraded from 1.1 ("table already exists"); creating the table only
when it is missing lets ``migrate`` work unchanged on both, and keeps the rows still waiting.
"""

from django.db import migrations, models


def create_table_unless_present(apps, schema_editor):
    model = apps.get_model("channels_delay", "DelayedMessage")
    existing = schema_editor.connection.introspection.table_names()
    if model._meta.db_table not in existing:
        schema_editor.create_model(model)


def drop_table(apps, schema_editor):
    schema_editor.delete_model(apps.get_model("channels_delay", "DelayedMessage"))


class Migration(migrations.Migration):

    initial = True

    dependencies = []

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="DelayedMessage",
                    fields=[
                        ("id", models.AutoField(auto_created=True, primary_key=True,
                                                serialize=False, verbose_name="ID")),
                        ("due_date", models.DateTimeField(db_index=True)),
                        ("channel_name", models.CharField(max_length=512)),
                        ("content", models.TextField()),
                    ],
                    options={"db_table": "channels.delay_delayedmessage"},
                ),
            ],
        ),
        # A separate operation, so that the model above exists in the state it is given.
        migrations.RunPython(create_table_unless_present, drop_table),
    ]
