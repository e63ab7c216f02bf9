from django.apps import AppConfig


class BindAppConfig(AppConfig):
    name = "tests.binding.bindapp"
    label = "bindapp"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        # Bindings are defined once models exist, as a 1.1 project would in its ready().
        from tests.binding.bindapp import bindings  # noqa: F401
