from django.apps import AppConfig


class ConfirmationsConfig(AppConfig):
    name = "confirmations"
    verbose_name = "Confirmations and activations"

    def ready(self) -> None:
        # The support search finds entitlements by a confirmation's entitlementReceiveId
        # through this app's lookup (docs/support-desk.md, "Search"): entitlements is the
        # lower layer and may not import confirmations.
        from entitlements.selectors.search import register_resolver

        from .selectors.search import entitlements_by_receive_id

        register_resolver("confirmation receive id", entitlements_by_receive_id)

        from aanspraak.metrics import scrape

        from .selectors.metrics import pending_gauges

        scrape.register(pending_gauges)  # read at every GET /metrics (docs/operations.md)
