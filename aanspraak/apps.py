from django.apps import AppConfig


class AanspraakConfig(AppConfig):
    name = "aanspraak"
    verbose_name = "Parties, schools and access"

    def ready(self) -> None:
        from . import checks, logs, lookups  # noqa: F401  (register the checks and ``field__any``)

        logs.install()  # no credential in any log record (aanspraak/logs.py)
