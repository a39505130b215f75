"""Expiry: entitlements past their order's expirationDate become expired (DESIGN.md §4)."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.test.utils import CaptureQueriesContext

from entitlements.models import Entitlement, EntitlementUrlStatus, StatusEvent
from entitlements.services.expiry import expire_due
from entitlements.tasks import expire_entitlements
from tests.factories import make_order

EXPIRY = dt.date(2027, 7, 31)


def test_expires_live_entitlements_and_their_url_statuses(registry):
    order = make_order(registry, 5, with_messages=False)
    keep = make_order(registry, 2, with_messages=False)
    keep.expiration_date = dt.date(2028, 7, 31)
    keep.save()
    ids = list(order.entitlements.order_by("id").values_list("id", flat=True))
    Entitlement.objects.filter(id=ids[0]).update(status="licensed")
    Entitlement.objects.filter(id=ids[1]).update(status="cancelled", end_date=dt.date(2026, 9, 1))
    Entitlement.objects.filter(id=ids[2]).update(status="entitled")
    EntitlementUrlStatus.objects.filter(entitlement_id=ids[0]).update(status="processed")
    EntitlementUrlStatus.objects.filter(entitlement_id=ids[1]).update(status="cancelled")

    # On the expiration date itself nothing expires yet.
    assert expire_due(today=EXPIRY).entitlements == 0
    report = expire_due(today=EXPIRY + dt.timedelta(days=1), batch_size=2)
    assert report.entitlements == 4 and report.batches == 2
    statuses = dict(Entitlement.objects.filter(delivery_order=order).values_list("id", "status"))
    assert statuses[ids[1]] == "cancelled"
    assert {statuses[i] for i in ids if i != ids[1]} == {"expired"}
    assert set(keep.entitlements.values_list("status", flat=True)) == {"created"}
    urls = dict(
        EntitlementUrlStatus.objects.filter(entitlement__delivery_order=order).values_list(
            "entitlement_id", "status"
        )
    )
    assert urls[ids[1]] == "cancelled"
    assert {urls[i] for i in ids if i != ids[1]} == {"expired"}
    events = StatusEvent.objects.filter(cause="expiry")
    assert events.filter(portal__isnull=True).count() == 4
    assert set(events.filter(portal__isnull=True).values_list("from_status", flat=True)) == {
        "licensed",
        "entitled",
        "created",
    }
    url_events = events.filter(portal=registry.portal)
    assert url_events.count() == 4
    assert url_events.get(entitlement_id=ids[0]).from_status == "processed"
    # Running again changes nothing.
    assert expire_due(today=EXPIRY + dt.timedelta(days=1)).entitlements == 0
    assert events.count() == 8


def test_queries_per_batch_are_constant(registry):
    make_order(registry, 3, with_messages=False)
    with CaptureQueriesContext(connection) as small:
        expire_due(today=EXPIRY + dt.timedelta(days=1))
    make_order(registry, 60, with_messages=False)
    with CaptureQueriesContext(connection) as large:
        expire_due(today=EXPIRY + dt.timedelta(days=1))
    assert len(small.captured_queries) == len(large.captured_queries)


def test_the_periodic_task_runs_the_service(registry, settings):
    current = make_order(registry, 2, with_messages=False)
    current.expiration_date = dt.date(2099, 7, 31)
    current.save()
    past = make_order(registry, 3, with_messages=False)
    past.expiration_date = past.activation_until_date
    past.save()
    assert expire_entitlements() == 3
    assert set(current.entitlements.values_list("status", flat=True)) == {"created"}
    assert settings.CELERY_BEAT_SCHEDULE["expire-entitlements"]["task"] == (
        "entitlements.tasks.expire_entitlements"
    )
    assert settings.CELERY_BEAT_SCHEDULE["outbound-sweep"]["task"] == (
        "entitlements.tasks.sweep_outbound"
    )
