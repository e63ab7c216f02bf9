from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Holds nothing but the migration that creates the demo accounts."""

    name = "example_project.accounts"
    label = "example_accounts"
