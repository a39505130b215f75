from django.apps import AppConfig


class AanspraakConfig(AppConfig):
    name = "aanspraak"
    verbose_name = "Parties, schools and access"

    def ready(self) -> None:
        from . import lookups  # noqa: F401  (registers ``field__any``)
