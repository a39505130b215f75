"""The confirmations' gauges of ``GET /metrics``, read at scrape time (docs/operations.md,
"Metrics"): how many confirmations wait to be applied and how long the oldest has waited.

One query, served by the partial index of pending rows (``confirmation_pending_idx`` on
``received_at`` where pending): ``count(*)`` reads only the pending entries and ``min`` the
first of them, however large the table of decided ones grows.
"""

from __future__ import annotations

from django.db.models import Count, Min
from django.utils import timezone

from aanspraak.metrics.scrape import ScrapeGauge
from confirmations.models import Confirmation, ConfirmationState


def pending_gauges() -> list[ScrapeGauge]:
    """``aanspraak_confirmations_pending`` and ``aanspraak_apply_lag_seconds`` (the age of
    the oldest pending confirmation; 0 when none waits)."""
    row = Confirmation.objects.filter(state=ConfirmationState.PENDING).aggregate(
        pending=Count("*"), oldest=Min("received_at")
    )
    oldest = row["oldest"]
    lag = max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0
    return [
        ScrapeGauge(
            "aanspraak_confirmations_pending",
            "Confirmations and activations stored and not yet decided by a worker.",
            samples=[((), float(row["pending"]))],
        ),
        ScrapeGauge(
            "aanspraak_apply_lag_seconds",
            "Age of the oldest pending confirmation or activation (0 when none is pending).",
            samples=[((), lag)],
        ),
    ]
