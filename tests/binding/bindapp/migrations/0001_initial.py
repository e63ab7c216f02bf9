import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Tag",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False,
                                        verbose_name="ID")),
                ("label", models.CharField(max_length=30, unique=True)),
            ],
        ),
        migrations.CreateModel(
            name="IntegerValue",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False,
                                        verbose_name="ID")),
                ("name", models.CharField(max_length=100, unique=True)),
                ("value", models.IntegerField(default=0, validators=[
                    django.core.validators.MinValueValidator(0),
                    django.core.validators.MaxValueValidator(1000),
                ])),
                ("room", models.CharField(default="lobby", max_length=50)),
                ("secret", models.CharField(blank=True, default="", max_length=50)),
                ("owner", models.ForeignKey(blank=True, null=True,
                                            on_delete=django.db.models.deletion.SET_NULL,
                                            to=settings.AUTH_USER_MODEL)),
                ("tags", models.ManyToManyField(blank=True, to="bindapp.tag")),
            ],
        ),
    ]
