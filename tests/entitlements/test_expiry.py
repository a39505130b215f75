"""Expiry: entitlements past their order's expirationDate become expired (docs/delivery.md,
"Expiry")."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from confirmations.services.apply import apply_all_pending
from entitlements.models import Entitlement, EntitlementUrlStatus, StatusEvent
from entitlements.rules.expiry import expiry_moment
from entitlements.services.expiry import expire_due
from entitlements.tasks import expire_entitlements
from tests.support.confirm_helpers import licensor_body, portal_body, propose, request_to, store
from tests.support.factories import make_order

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


# --- one rule with the confirmation worker's replay ------------------------------------


def _snapshot(order) -> dict:
    return {
        "entitlements": sorted(
            order.entitlements.values_list("pk", "status", "end_date", "status_changed_at")
        ),
        "urls": sorted(
            EntitlementUrlStatus.objects.filter(entitlement__delivery_order=order).values_list(
                "entitlement_id", "portal_id", "status", "status_changed_at"
            )
        ),
        "events": StatusEvent.objects.count(),
    }


@pytest.mark.parametrize("job_first", [True, False], ids=["job-then-replay", "replay-then-job"])
def test_expiry_job_and_replay_agree_whatever_runs_first(registry, job_first):
    """A cancelled entitlement whose portal had processed it and a licensed one; the order
    expires. Whether the job or a replay (a later, duplicate confirmation) applies the
    expiry first, both end in the same state, stamped at the expiry moment, and the second
    one changes nothing."""
    order = make_order(registry, 2)
    order.expiration_date = dt.date(2099, 7, 31) if job_first else dt.date(2026, 9, 30)
    order.save()
    cancelled, licensed = order.entitlements.order_by("id")
    cancel = propose(
        cancelled, registry.licensor, status="cancelled", end_date=dt.date(2026, 9, 20)
    )
    licence = request_to(licensed, registry.licensor)
    at = dt.datetime(2026, 9, 10, tzinfo=dt.UTC)
    store(registry.licensor, licensor_body(cancel, "cancelled", at=at, receive_id="c1"))
    store(registry.licensor, licensor_body(licence, "licensed", at=at))
    for e in (cancelled, licensed):
        store(registry.portal, portal_body(request_to(e, registry.portal), "processed", at=at))
    apply_all_pending()

    if job_first:
        order.expiration_date = dt.date(2026, 9, 30)  # time passes: the order has expired
        order.save()
        assert expire_due().url_statuses == 2
    # A re-sent cancel confirmation (new receive id, duplicate outcome) replays the entitlement.
    later = dt.datetime(2026, 9, 12, tzinfo=dt.UTC)
    store(registry.licensor, licensor_body(cancel, "cancelled", at=later, receive_id="c2"))
    store(
        registry.licensor,
        licensor_body(licence, "licensed", at=later),
    )
    before = _snapshot(order)
    apply_all_pending()
    if job_first:
        assert _snapshot(order) == before  # the replay found exactly the job's result
    else:
        assert expire_due().url_statuses == 0  # the job finds the replay's result
        assert _snapshot(order) == before

    moment = expiry_moment(dt.date(2026, 9, 30))
    assert moment == dt.datetime(2026, 9, 30, 22, 0, tzinfo=dt.UTC)  # 1 Oct 00:00 Amsterdam
    cancelled.refresh_from_db()
    licensed.refresh_from_db()
    assert (cancelled.status, cancelled.end_date, cancelled.status_changed_at) == (
        "cancelled",
        dt.date(2026, 9, 20),
        at,
    )
    assert (licensed.status, licensed.status_changed_at) == ("expired", moment)
    urls = EntitlementUrlStatus.objects.filter(entitlement__delivery_order=order)
    assert set(urls.values_list("status", "status_changed_at")) == {("expired", moment)}
    expiry_events = StatusEvent.objects.filter(cause="expiry")
    # (A replay writes one event per changed row, from the status as it found it.)
    assert not job_first or sorted(expiry_events.values_list("entitlement_id", "from_status")) == [
        (cancelled.pk, "processed"),
        (licensed.pk, "licensed"),
        (licensed.pk, "processed"),
    ]
    assert set(expiry_events.values_list("effective_at", flat=True)) == {moment}


def test_the_job_expires_url_statuses_of_cancelled_and_blocked_entitlements(registry):
    order = make_order(registry, 3, with_messages=False)
    ids = list(order.entitlements.order_by("id").values_list("id", flat=True))
    ended = dt.date(2026, 9, 1)
    Entitlement.objects.filter(id=ids[0]).update(status="cancelled", end_date=ended)
    Entitlement.objects.filter(id=ids[1]).update(status="blocked", end_date=ended)
    Entitlement.objects.filter(id=ids[2]).update(status="expired")  # by an earlier replay
    EntitlementUrlStatus.objects.filter(entitlement_id__in=ids[:2]).update(status="processed")
    EntitlementUrlStatus.objects.filter(entitlement_id=ids[2]).update(status="expired")
    report = expire_due(today=EXPIRY + dt.timedelta(days=1))
    assert (report.entitlements, report.url_statuses) == (0, 2)
    assert set(order.entitlements.values_list("status", flat=True)) == {
        "cancelled",
        "blocked",
        "expired",
    }
    assert set(
        EntitlementUrlStatus.objects.filter(entitlement_id__in=ids[:2]).values_list(
            "status", "status_changed_at"
        )
    ) == {("expired", expiry_moment(EXPIRY))}
    assert expire_due(today=EXPIRY + dt.timedelta(days=1)).batches == 0
