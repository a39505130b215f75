from django.apps import AppConfig


class EntitlementsConfig(AppConfig):
    name = "entitlements"
    verbose_name = "Delivery orders and entitlements"

    def ready(self) -> None:
        from aanspraak.metrics import scrape

        from .selectors.metrics import outbound_gauges

        scrape.register(outbound_gauges)  # read at every GET /metrics (docs/operations.md)
