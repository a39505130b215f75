from django.apps import AppConfig


class ConfirmationsConfig(AppConfig):
    name = "confirmations"
    verbose_name = "Confirmations and activations"

    def ready(self) -> None:
        from aanspraak.metrics import scrape

        from .selectors.metrics import pending_gauges

        scrape.register(pending_gauges)  # read at every GET /metrics (docs/operations.md)
