"""Audit (docs/security.md, "Audit"): every status change is traceable to its cause, an admin's
by name, and status events are kept: neither the admin nor the database lets them change."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

from confirmations.selectors.audit import Origin, origin_of
from confirmations.services.apply import apply_all_pending
from entitlements.models import OutboundMessage, StatusEvent
from tests.support.confirm_helpers import licensor_body, portal_body, request_to, store
from tests.support.factories import make_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    """A browser logged in as the superuser ``alice``."""
    user = get_user_model().objects.create_superuser("alice", "alice@example.org", "pw")
    browser = HttpClient()
    browser.force_login(user)
    return browser


def test_an_admin_cancel_confirmed_by_the_parties_leads_back_to_the_staff_user(
    registry, staff, woken_drains, django_capture_on_commit_callbacks
):
    order = make_order(registry, 2)
    entitlement = order.entitlements.order_by("id").first()
    # The entitlement was put out and confirmed: entitled, its URL processed.
    store(registry.licensor, licensor_body(request_to(entitlement, registry.licensor)))
    store(registry.portal, portal_body(request_to(entitlement, registry.portal)))
    apply_all_pending()
    entitlement.refresh_from_db()
    assert entitlement.status == "entitled"

    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            reverse("admin:entitlements_entitlement_changelist"),
            {
                "action": "propose_cancel",
                "_selected_action": [entitlement.pk],
                "end_date": f"{timezone.localdate():%Y-%m-%d}",
                "confirm": "Yes, propose",
            },
        )
    assert response.status_code == 302
    proposals = OutboundMessage.objects.filter(
        entitlement=entitlement, proposed_end_date=timezone.localdate()
    )
    assert {m.requested_by for m in proposals} == {"alice"}
    to_licensor = proposals.get(recipient=registry.licensor)
    to_portal = proposals.get(recipient=registry.portal)

    later = timezone.now()
    store(registry.licensor, licensor_body(to_licensor, "cancelled", at=later))
    store(registry.portal, portal_body(to_portal, "cancelled", at=later))
    apply_all_pending()
    entitlement.refresh_from_db()
    assert entitlement.status == "cancelled"

    cancelled = StatusEvent.objects.get(entitlement=entitlement, to_status="cancelled", portal=None)
    assert cancelled.cause == "confirmation"
    assert origin_of(cancelled) == Origin(
        "confirmation",
        party=registry.licensor.name,
        request=str(to_licensor.reference_id),
        requested_by="alice",
    )
    url_cancelled = StatusEvent.objects.get(
        entitlement=entitlement, portal=registry.portal, to_status="cancelled"
    )
    assert origin_of(url_cancelled).requested_by == "alice"
    # Changes the hub made on its own name no one.
    created = StatusEvent.objects.filter(entitlement=entitlement, to_status="entitled").get()
    assert origin_of(created).requested_by == ""
    # The admin shows it: the confirmation's page names the user.
    page = staff.get(reverse("admin:confirmations_confirmation_changelist")).content.decode()
    assert "alice" in page


def test_a_resend_keeps_who_asked_for_it(registry, staff, woken_drains):
    make_order(registry, 1)
    message = OutboundMessage.objects.filter(recipient=registry.licensor).get()
    OutboundMessage.objects.filter(pk=message.pk).update(state="failed")
    staff.post(
        reverse("admin:entitlements_outboundmessage_changelist"),
        {"action": "resend_selected", "_selected_action": [message.pk], "confirm": "Yes"},
    )
    message.refresh_from_db()
    assert (message.resent_by, message.requested_by) == ("alice", "")


def test_status_events_cannot_be_changed_or_deleted_through_the_admin(registry, staff):
    order = make_order(registry, 1)
    entitlement = order.entitlements.get()
    store(registry.licensor, licensor_body(request_to(entitlement, registry.licensor)))
    apply_all_pending()
    event = StatusEvent.objects.get(entitlement=entitlement)
    change = reverse("admin:entitlements_statusevent_change", args=[event.pk])
    page = staff.get(change)
    assert page.status_code == 200
    assert 'name="to_status"' not in page.content.decode()  # shown, not editable
    assert staff.post(change, {"to_status": "licensed", "cause": "admin"}).status_code == 403
    delete = reverse("admin:entitlements_statusevent_delete", args=[event.pk])
    assert staff.get(delete).status_code == 403
    assert staff.post(delete, {"post": "yes"}).status_code == 403
    changelist = reverse("admin:entitlements_statusevent_changelist")
    assert "delete_selected" not in staff.get(changelist).content.decode()
    staff.post(changelist, {"action": "delete_selected", "_selected_action": [event.pk]})
    # Nor through the entitlement's page (its events inline).
    entitlement_page = reverse("admin:entitlements_entitlement_change", args=[entitlement.pk])
    assert staff.post(entitlement_page, {}).status_code == 403
    event.refresh_from_db()
    assert (event.to_status, event.cause) == ("entitled", "confirmation")


def test_the_database_refuses_to_change_or_delete_a_status_event(registry):
    order = make_order(registry, 1)
    entitlement = order.entitlements.get()
    store(registry.licensor, licensor_body(request_to(entitlement, registry.licensor)))
    apply_all_pending()
    events = StatusEvent.objects.filter(entitlement=entitlement)
    with pytest.raises(IntegrityError, match="status events are kept"), transaction.atomic():
        events.update(cause_ref="edited")
    with pytest.raises(IntegrityError, match="status events are kept"), transaction.atomic():
        events.delete()
    with pytest.raises(IntegrityError, match="status events are kept"), transaction.atomic():
        entitlement.delete()  # the cascade meets the guard too
    assert events.count() == 1
    # A deliberate purge (retention) says so in its transaction.
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL hub.purge_status_events = 'on'")
        entitlement.delete()
    assert not StatusEvent.objects.filter(entitlement_id=entitlement.pk).exists()
