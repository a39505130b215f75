"""The entitlement's timeline (docs/support-desk.md, "Timeline"): its story in time order on
one admin page, linked from the entitlement's page, in a constant number of queries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from confirmations.models import Confirmation
from confirmations.services.apply import apply_all_pending
from entitlements.models import DeliveryAttempt, DeliveryOrderIntake, OutboundMessage, StatusEvent
from tests.support.confirm_helpers import T0, licensor_body, portal_body, propose, request_to, store
from tests.support.factories import make_order
from tests.support.html_rows import table_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    """A browser logged in as the superuser ``alice``."""
    user = get_user_model().objects.create_superuser("alice", "alice@example.org", "pw")
    browser = HttpClient()
    browser.force_login(user)
    return browser


def timeline_url(entitlement) -> str:
    return reverse("admin:entitlements_entitlement_timeline", args=[entitlement.pk])


def rows_of(browser, entitlement) -> list[dict]:
    response = browser.get(timeline_url(entitlement))
    assert response.status_code == 200
    return table_rows(response.content.decode(), "timeline")


def index_of(rows, *needles) -> int:
    """The index of the only row whose text holds every needle."""
    found = [i for i, r in enumerate(rows) if all(n in r["text"] for n in needles)]
    assert len(found) == 1, (needles, [rows[i]["text"] for i in found])
    return found[0]


def test_the_url_of_the_shared_contract():
    assert reverse("admin:entitlements_entitlement_timeline", args=[7]) == (
        "/admin/entitlements/entitlement/7/timeline/"
    )


def test_the_entitlement_page_links_to_its_timeline(registry, staff):
    entitlement = make_order(registry, 1).entitlements.get()
    page = staff.get(reverse("admin:entitlements_entitlement_change", args=[entitlement.pk]))
    html = page.content.decode()
    assert f'href="{timeline_url(entitlement)}"' in html
    assert ">Timeline</a>" in html


def test_the_story_of_an_entitlement_in_time_order(
    registry, staff, woken_drains, django_capture_on_commit_callbacks
):
    order = make_order(registry, 2)
    entitlement = order.entitlements.order_by("id").first()
    # The seller's order came in before the entitlements were made of it.
    intake = DeliveryOrderIntake.objects.create(
        seller=registry.seller, reference_id="REF-42", delivery_order=order, action="order", body={}
    )
    DeliveryOrderIntake.objects.filter(pk=intake.pk).update(
        received_at=entitlement.date_created - dt.timedelta(seconds=1)
    )
    to_licensor = request_to(entitlement, registry.licensor)
    to_portal = request_to(entitlement, registry.portal)
    DeliveryAttempt.objects.create(
        message=to_licensor,
        started_at=timezone.now(),
        duration_ms=12,
        http_status=503,
        outcome="retry",
        error="HTTP 503: busy",
    )
    store(registry.licensor, licensor_body(to_licensor, receive_id="rcv-entitled"))
    store(registry.portal, portal_body(to_portal, receive_id="rcv-processed"))
    bad = licensor_body(to_licensor, receive_id="rcv-bad-product")
    store(registry.licensor, {**bad, "productId": registry.other_product.product_id})
    apply_all_pending()

    # alice proposes the cancel; the parties confirm it.
    with django_capture_on_commit_callbacks(execute=True):
        staff.post(
            reverse("admin:entitlements_entitlement_changelist"),
            {
                "action": "propose_cancel",
                "_selected_action": [entitlement.pk],
                "end_date": "2026-12-31",
                "confirm": "Yes, propose",
            },
        )
    cancel_to_licensor = OutboundMessage.objects.get(
        entitlement=entitlement, proposed_entitlement_status="cancelled"
    )
    cancel_to_portal = OutboundMessage.objects.get(
        entitlement=entitlement, proposed_url_status="cancelled"
    )
    later = T0 + dt.timedelta(days=1)
    store(
        registry.licensor,
        licensor_body(cancel_to_licensor, "cancelled", at=later, receive_id="rcv-cancel"),
    )
    store(
        registry.portal,
        portal_body(cancel_to_portal, "cancelled", at=later, receive_id="rcv-url-cancel"),
    )
    apply_all_pending()
    entitlement.refresh_from_db()
    assert entitlement.status == "cancelled"

    rows = rows_of(staff, entitlement)
    # In time order, the intake first.
    whens = [r["cells"]["when"] for r in rows]
    assert whens == sorted(whens)
    assert "REF-42" in rows[0]["text"] and registry.seller.name in rows[0]["text"]
    created = index_of(rows, "Entitlement created")

    # Every message with its reference id, recipient, proposal; the attempt with its status.
    first_request = index_of(rows, str(to_licensor.reference_id), "Entitlement request")
    assert "status created" in rows[first_request]["text"]
    attempt = index_of(rows, "Delivery attempt", "HTTP 503")
    assert rows[attempt]["cells"]["outcome"] == "retry"
    assert str(to_licensor.reference_id) in rows[attempt]["text"]
    proposal = index_of(rows, str(cancel_to_licensor.reference_id), "Entitlement request")
    assert "proposed by alice" in rows[proposal]["text"]
    assert "endDate 2026-12-31" in rows[proposal]["text"]

    # Every confirmation with its receive id, sender, processedTimestamp and outcome.
    entitled = index_of(rows, "rcv-entitled", "Confirmation:")
    assert rows[entitled]["cells"]["outcome"] == "applied"
    assert registry.licensor.name in rows[entitled]["cells"]["who"]
    assert "processedTimestamp 2026-09-01T08:00:00Z" in rows[entitled]["text"]
    rejected = index_of(rows, "rcv-bad-product")
    assert rows[rejected]["cells"]["outcome"] == "rejected"
    assert "does not match the product" in rows[rejected]["text"]
    assert rows[index_of(rows, "rcv-processed", "Confirmation:")]["cells"]["outcome"] == "applied"

    # Every status event with from → to and its cause, after the confirmation causing it.
    became_entitled = index_of(rows, "Status created → entitled")
    assert "rcv-entitled" in rows[became_entitled]["text"]
    assert rows[became_entitled]["cells"]["who"] == registry.licensor.name
    assert "alice" not in rows[became_entitled]["text"]
    cancelled = index_of(rows, "Status entitled → cancelled")
    cancel_confirmation = index_of(rows, "rcv-cancel", "Confirmation:")
    assert created < first_request < attempt < entitled < became_entitled
    assert proposal < cancel_confirmation < cancelled
    # An admin's proposal, confirmed by the registry: the cause names the staff user.
    assert "alice" in rows[cancelled]["cells"]["who"]
    assert str(cancel_to_licensor.reference_id) in rows[cancelled]["cells"]["detail"]
    url_cancelled = index_of(rows, f"URL status at {registry.portal.name}", "→ cancelled")
    assert "alice" in rows[url_cancelled]["cells"]["who"]

    # Links to the order, school, product, parties and the messages.
    html = staff.get(timeline_url(entitlement)).content.decode()
    for url in [
        reverse("admin:entitlements_deliveryorder_change", args=[order.pk]),
        reverse("admin:aanspraak_school_change", args=[order.school_id]),
        reverse("admin:aanspraak_product_change", args=[order.product_id]),
        reverse("admin:aanspraak_party_change", args=[registry.seller.pk]),
        reverse("admin:aanspraak_party_change", args=[registry.licensor.pk]),
        reverse("admin:entitlements_outboundmessage_change", args=[cancel_to_portal.pk]),
        reverse(
            "admin:confirmations_confirmation_change",
            args=[Confirmation.objects.get(receive_id="rcv-cancel").pk],
        ),
    ]:
        assert f'href="{url}"' in html, url


def _history(registry, rounds: int):
    """An entitlement with ``rounds`` of everything: intakes, requests with attempts,
    confirmations (pending, applied and rejected) and status events."""
    order = make_order(registry, 1)
    entitlement = order.entitlements.get()
    now = timezone.now()
    for i in range(rounds):
        DeliveryOrderIntake.objects.create(
            seller=registry.seller,
            reference_id=f"REF-{order.pk}-{i}",
            delivery_order=order,
            action="order",
            body={},
        )
        message = propose(entitlement, registry.portal, url_status="processed")
        DeliveryAttempt.objects.create(
            message=message, started_at=now, duration_ms=5, http_status=502, outcome="retry"
        )
        store(registry.portal, portal_body(message, receive_id=f"rcv-{order.pk}-{i}"))
    apply_all_pending()
    Confirmation.objects.filter(receive_id__endswith="-0").update(state="rejected")
    store(registry.licensor, licensor_body(request_to(entitlement, registry.licensor)))
    causes = ["confirmation", "delivery", "intake", "expiry", "admin"]
    StatusEvent.objects.bulk_create(
        StatusEvent(
            entitlement=entitlement,
            portal=registry.portal if i % 2 else None,
            from_status="created",
            to_status="entitled",
            cause=causes[i % len(causes)],
            cause_ref=f"ref-{i}",
            effective_at=now,
        )
        for i in range(rounds)
    )
    return entitlement


def test_the_page_takes_a_constant_number_of_queries(
    registry, staff, django_assert_max_num_queries
):
    short, long = _history(registry, 2), _history(registry, 20)
    with CaptureQueriesContext(connection) as few:
        short_rows = rows_of(staff, short)
    with django_assert_max_num_queries(len(few)):
        long_rows = rows_of(staff, long)
    assert len(long_rows) > len(short_rows) + 4 * 18  # the history did grow
    assert len(few) <= 10  # six of the timeline, the rest the session's and the user's


def test_staff_only(registry, staff, client):
    entitlement = make_order(registry, 1).entitlements.get()
    url = timeline_url(entitlement)
    assert client.get(url).status_code == 302  # to the admin's login
    clerk = get_user_model().objects.create_user("bob", "bob@example.org", "pw", is_staff=True)
    browser = HttpClient()
    browser.force_login(clerk)
    assert browser.get(url).status_code == 403  # staff, but may not view entitlements
    clerk.user_permissions.add(Permission.objects.get(codename="view_entitlement"))
    assert browser.get(url).status_code == 200
    assert (
        staff.get(timeline_url(entitlement).replace(str(entitlement.pk), "999999")).status_code
        == 404
    )
