from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        from . import keycheck, signals  # noqa: F401  (the encryption-key system check; audit receivers)
