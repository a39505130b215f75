from django.apps import AppConfig


class AanspraakConfig(AppConfig):
    name = "aanspraak"
    verbose_name = "Parties, schools and access"

    def ready(self) -> None:
        from . import checks, lookups  # noqa: F401  (register the checks and ``field__any``)
