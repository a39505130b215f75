"""Admin actions: re-send outbound messages; propose cancel/block of entitlements."""

from __future__ import annotations

import pytest
from django.utils import timezone

from entitlements.models import Entitlement, OutboundMessage
from tests.support.factories import make_order


@pytest.fixture
def woken(woken_drains):
    return woken_drains


def test_resend_action(registry, admin_client, woken, django_capture_on_commit_callbacks):
    make_order(registry, 2)
    OutboundMessage.objects.update(state="failed", last_error="HTTP 400: no")
    chosen = list(
        OutboundMessage.objects.filter(recipient=registry.licensor).values_list("pk", flat=True)
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/entitlements/outboundmessage/",
            {"action": "resend_selected", "_selected_action": chosen},
            follow=True,
        )
    assert response.status_code == 200
    assert "2 message(s) queued" in response.content.decode()
    again = OutboundMessage.objects.filter(pk__in=chosen)
    assert set(again.values_list("state", flat=True)) == {"pending"}
    assert all(m.next_attempt_at <= timezone.now() and m.last_error == "" for m in again)
    assert set(OutboundMessage.objects.exclude(pk__in=chosen).values_list("state", flat=True)) == {
        "failed"
    }
    assert woken == [registry.licensor.pk]


@pytest.mark.parametrize("status", ["cancelled", "blocked"])
def test_propose_actions(registry, admin_client, woken, status, django_capture_on_commit_callbacks):
    order = make_order(registry, 3)
    ids = list(order.entitlements.order_by("id").values_list("pk", flat=True))
    Entitlement.objects.filter(pk=ids[0]).update(status="licensed")
    action = "propose_cancel" if status == "cancelled" else "propose_block"
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/entitlements/entitlement/",
            {"action": action, "_selected_action": ids},
            follow=True,
        )
    assert response.status_code == 200
    proposals = OutboundMessage.objects.filter(proposed_end_date=timezone.localdate())
    to_licensor = proposals.filter(recipient=registry.licensor, proposed_entitlement_status=status)
    expected = ids[1:] if status == "cancelled" else ids  # a licence can be blocked, not cancelled
    assert sorted(to_licensor.values_list("entitlement_id", flat=True)) == expected
    to_portal = proposals.filter(recipient=registry.portal, proposed_url_status=status)
    assert sorted(to_portal.values_list("entitlement_id", flat=True)) == expected
    # Statuses are unchanged until the parties confirm.
    assert Entitlement.objects.filter(status__in=["cancelled", "blocked"]).count() == 0
    assert set(woken) == {registry.licensor.pk, registry.portal.pk}
    # The same action again proposes nothing new.
    admin_client.post(
        "/admin/entitlements/entitlement/", {"action": action, "_selected_action": ids}
    )
    assert proposals.count() == 2 * len(expected)
