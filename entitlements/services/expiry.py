"""Expiry: entitlements whose delivery order's ``expirationDate`` has passed become
``expired``, and their live URL statuses with them (docs/delivery.md, "Expiry").

The rule (which statuses expire, and at which moment) lives in ``entitlements.rules.expiry``
and is the one the confirmation worker's replay folds in, so the final state does not depend
on whether this job ran before or after a replay: the entitlement becomes ``expired`` unless
it is cancelled or blocked; every live URL status expires, also those of cancelled and
blocked entitlements; both at ``expiry_moment(expirationDate)``, not at the time the job runs.

Set-based, in batches: one query for the expired orders that still have work, then per
batch of one such order one SELECT ... FOR NO KEY UPDATE SKIP LOCKED of its entitlements (so
two sweeps never fight), one SELECT ... FOR UPDATE of their URL statuses (ordered by id: the
lock order of the worker's replay), then the one writer of status changes
(``entitlements.status.write_changes``): one UPDATE of the entitlements, one of the
URL statuses and one INSERT of the StatusEvents (cause ``expiry``).

A batch reads by the partial index ``entitlement_unexpired_idx`` (by order) of the
entitlements that are not expired, one order at a time: in proportion to the rows it
changes, never the whole table (an expired entitlement leaves the index). See
docs/performance.md, "Scale".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import CharField, Exists, OuterRef, Q
from django.db.models.functions import Cast
from django.db.models.lookups import In
from django.utils import timezone

from entitlements.models import (
    NOT_EXPIRED_STATUSES,
    DeliveryOrder,
    Entitlement,
    EntitlementUrlStatus,
)
from entitlements.rules.expiry import (
    EXPIRING_STATUSES,
    EXPIRING_URL_STATUSES,
    expires,
    expiry_moment,
)
from entitlements.rules.transitions import Cause, Subject
from entitlements.status import StatusChange, UrlChange, write_changes
from entitlements.statuses import END_DATE_STATUSES, EntitlementStatus, EventCause, UrlStatus


@dataclass
class ExpiryReport:
    entitlements: int = 0
    url_statuses: int = 0
    batches: int = 0


def expire_due(
    today: dt.date | None = None, batch_size: int | None = None, max_batches: int | None = None
) -> ExpiryReport:
    """Expire every entitlement whose order's expirationDate is before ``today`` (the local
    date by default: an order valid until 31 July expires on 1 August, at 00:00 hub time).
    ``max_batches`` stops early (the next run goes on where this one stopped)."""
    today = today or timezone.localdate()
    size = batch_size or int(getattr(settings, "HUB_EXPIRY_BATCH_SIZE", 5000))
    report = ExpiryReport()
    for order_pk, expiration_date in _orders_with_work(today):
        while max_batches is None or report.batches < max_batches:
            done, urls, seen = _expire_batch(size, order_pk, expiration_date)
            if seen:
                report.entitlements += done
                report.url_statuses += urls
                report.batches += 1
            if seen < size:
                break  # the order is done (but for rows another sweep holds)
        else:
            return report
    return report


def _needs_expiry() -> Q:
    """Entitlements the sweep still has to touch: a status that expires, or (cancelled,
    blocked) a live URL status. Limited to the not-expired statuses so that the partial index
    ``entitlement_unexpired_idx`` serves it."""
    # The entitlement's own status inside the EXISTS keeps PostgreSQL from hashing the whole
    # URL status table for it: it is probed per cancelled or blocked entitlement only.
    live_url = EntitlementUrlStatus.objects.filter(
        entitlement_id=OuterRef("pk"), status__in=EXPIRING_URL_STATUSES
    ).filter(In(Cast(OuterRef("status"), CharField()), list(END_DATE_STATUSES)))
    return Q(status__in=NOT_EXPIRED_STATUSES) & (Q(status__in=EXPIRING_STATUSES) | Exists(live_url))


def _orders_with_work(today: dt.date) -> list[tuple[int, dt.date]]:
    """(pk, expirationDate) of the expired orders that still have an entitlement or URL
    status to expire (one probe of the partial index per expired order)."""
    pending = Entitlement.objects.filter(_needs_expiry(), delivery_order_id=OuterRef("pk"))
    return list(
        DeliveryOrder.objects.filter(expiration_date__lt=today)
        .filter(Exists(pending))
        .order_by("pk")
        .values_list("pk", "expiration_date")
    )


def _expire_batch(size: int, order_pk: int, expiration_date: dt.date) -> tuple[int, int, int]:
    """Expire one batch of one expired order; (entitlements expired, URL statuses expired,
    entitlements seen)."""
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            # NO KEY UPDATE: see confirmations/services/apply.py (deferred FK checks of
            # StatusEvents inserted by a concurrent delivery take KEY SHARE at commit).
            # One order by equality, no join and no ORDER BY (SKIP LOCKED never waits, so
            # the lock order does not matter): the scan of the partial index stops at LIMIT.
            Entitlement.objects.select_for_update(skip_locked=True, of=("self",), no_key=True)
            .filter(_needs_expiry(), delivery_order_id=order_pk)
            .order_by()
            .values_list("id", "status")[:size]
        )
        if not rows:
            return 0, 0, 0
        # Every row of the batch belongs to one order: one moment, one cause.
        cause = Cause(EventCause.EXPIRY, None, "", expiry_moment(expiration_date))
        expiring = [
            StatusChange(pk, status, EntitlementStatus.EXPIRED, None, cause)
            for pk, status in rows
            if expires(Subject.ENTITLEMENT, status)
        ]
        locked_urls = (
            EntitlementUrlStatus.objects.select_for_update()
            .filter(entitlement_id__in=[pk for pk, _ in rows], status__in=EXPIRING_URL_STATUSES)
            .order_by("id")
            .values_list("id", "entitlement_id", "portal_id", "status")
        )
        url_rows = [
            UrlChange(pk, entitlement_pk, portal_pk, status, UrlStatus.EXPIRED, cause)
            for pk, entitlement_pk, portal_pk, status in locked_urls
        ]
        write_changes(expiring, url_rows, now)
    return len(expiring), len(url_rows), len(rows)
