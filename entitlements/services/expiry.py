"""Expiry: entitlements whose delivery order's ``expirationDate`` has passed become
``expired``, and their live URL statuses with them (DESIGN.md §4).

Set-based, in batches: per batch one SELECT ... FOR UPDATE SKIP LOCKED of the entitlements
(so two sweeps never fight), one UPDATE of their status, one of their URL statuses, and one
bulk insert of the StatusEvents (cause ``expiry``). Cancelled, blocked and already expired
entitlements are left alone; so are URL statuses that ended.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from entitlements.models import Entitlement, EntitlementUrlStatus, StatusEvent
from entitlements.statuses import EntitlementStatus, EventCause, UrlStatus

FINAL_STATUSES = (EntitlementStatus.CANCELLED, EntitlementStatus.BLOCKED, EntitlementStatus.EXPIRED)
FINAL_URL_STATUSES = (UrlStatus.CANCELLED, UrlStatus.BLOCKED, UrlStatus.EXPIRED)


@dataclass
class ExpiryReport:
    entitlements: int = 0
    url_statuses: int = 0
    batches: int = 0


def expire_due(today: dt.date | None = None, batch_size: int | None = None) -> ExpiryReport:
    """Expire every entitlement whose order's expirationDate is before ``today`` (the local
    date by default: an order valid until 31 July expires on 1 August)."""
    today = today or timezone.localdate()
    size = batch_size or int(getattr(settings, "HUB_EXPIRY_BATCH_SIZE", 5000))
    report = ExpiryReport()
    while True:
        done, urls = _expire_batch(today, size)
        if not done:
            return report
        report.entitlements += done
        report.url_statuses += urls
        report.batches += 1


def _expire_batch(today: dt.date, size: int) -> tuple[int, int]:
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            Entitlement.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(delivery_order__expiration_date__lt=today)
            .exclude(status__in=FINAL_STATUSES)
            .order_by("id")
            .values_list("id", "status")[:size]
        )
        if not rows:
            return 0, 0
        pks = [pk for pk, _ in rows]
        Entitlement.objects.filter(id__in=pks).update(
            status=EntitlementStatus.EXPIRED, status_changed_at=now, date_last_modified=now
        )
        url_rows = list(
            EntitlementUrlStatus.objects.select_for_update()
            .filter(entitlement_id__in=pks)
            .exclude(status__in=FINAL_URL_STATUSES)
            .values_list("id", "entitlement_id", "portal_id", "status")
        )
        if url_rows:
            EntitlementUrlStatus.objects.filter(id__in=[r[0] for r in url_rows]).update(
                status=UrlStatus.EXPIRED, status_changed_at=now, date_last_modified=now
            )
        events = [
            StatusEvent(
                entitlement_id=pk,
                from_status=status,
                to_status=EntitlementStatus.EXPIRED,
                cause=EventCause.EXPIRY,
                effective_at=now,
            )
            for pk, status in rows
        ]
        events += [
            StatusEvent(
                entitlement_id=entitlement_pk,
                portal_id=portal_pk,
                from_status=status,
                to_status=UrlStatus.EXPIRED,
                cause=EventCause.EXPIRY,
                effective_at=now,
            )
            for _, entitlement_pk, portal_pk, status in url_rows
        ]
        StatusEvent.objects.bulk_create(events, batch_size=2000)
    return len(rows), len(url_rows)
