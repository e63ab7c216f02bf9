from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "example_project.dashboard"
    label = "dashboard"

    def ready(self):
        # A binding connects to its model's signals when its class is defined: import it once
        # the models are loaded, as a Channels 1.1 project does.
        from example_project.dashboard import bindings  # noqa: F401
