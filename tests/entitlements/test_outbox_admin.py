"""Admin actions, each with a confirmation page (docs/support-desk.md, "Actions"): re-send
failed and stuck outbound messages; propose cancel/block of entitlements with an endDate."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from entitlements.models import Entitlement, OutboundMessage
from tests.support.factories import make_order

pytestmark = pytest.mark.django_db

ENTITLEMENTS = "/admin/entitlements/entitlement/"
MESSAGES = "/admin/entitlements/outboundmessage/"


@pytest.fixture
def woken(woken_drains):
    return woken_drains


def go(admin_client, url, action, pks, **form):
    """The changelist's "Go": the action chosen in the select, the rows ticked."""
    return admin_client.post(url, {"action": action, "_selected_action": pks, "index": 0, **form})


def confirm(admin_client, url, action, pks, **form):
    """The confirmation page submitted (it posts without ``index``, with ``confirm``)."""
    data = {"action": action, "_selected_action": pks, "confirm": "yes", **form}
    return admin_client.post(url, data, follow=True)


def test_resend_asks_first_then_resends_failed_and_stuck_messages_only(
    registry, admin_client, woken, django_capture_on_commit_callbacks
):
    make_order(registry, 4)
    failed, stuck, delivered, never_tried = OutboundMessage.objects.filter(
        recipient=registry.licensor
    ).order_by("id")
    OutboundMessage.objects.filter(pk=failed.pk).update(state="failed", last_error="HTTP 400: no")
    later = timezone.now() + dt.timedelta(hours=1)
    OutboundMessage.objects.filter(pk=stuck.pk).update(attempt_count=3, next_attempt_at=later)
    OutboundMessage.objects.filter(pk=delivered.pk).update(
        state="delivered", attempt_count=1, delivered_at=timezone.now()
    )
    chosen = [failed.pk, stuck.pk, delivered.pk, never_tried.pk]

    page = go(admin_client, MESSAGES, "resend_selected", chosen)
    assert page.status_code == 200
    html = page.content.decode()
    assert "4 message(s) selected, of which 2 failed or stuck" in html
    assert '<input type="submit" name="confirm" value="Yes, re-send">' in html
    assert html.count('name="_selected_action"') == 4
    assert OutboundMessage.objects.get(pk=failed.pk).state == "failed"  # nothing done yet
    assert woken == []

    with django_capture_on_commit_callbacks(execute=True):
        response = confirm(admin_client, MESSAGES, "resend_selected", chosen)
    assert response.status_code == 200
    assert "2 message(s) queued to be sent again" in response.content.decode()
    for message in (failed, stuck):
        message.refresh_from_db()
        assert message.state == "pending" and message.next_attempt_at <= timezone.now()
        assert (message.attempt_count, message.last_error, message.resent_by) == (0, "", "admin")
    delivered.refresh_from_db()
    never_tried.refresh_from_db()
    assert (delivered.state, delivered.resent_by) == ("delivered", "")
    assert (never_tried.next_attempt_at, never_tried.resent_by) == (None, "")
    assert woken == [registry.licensor.pk]


@pytest.mark.parametrize(
    ("action", "status"), [("propose_cancel", "cancelled"), ("propose_block", "blocked")]
)
def test_propose_asks_the_end_date_first(registry, admin_client, woken, action, status):
    order = make_order(registry, 2)
    ids = list(order.entitlements.order_by("id").values_list("pk", flat=True))
    page = go(admin_client, ENTITLEMENTS, action, ids)
    assert page.status_code == 200
    html = page.content.decode()
    assert '<input type="date" name="end_date"' in html
    assert f'value="{timezone.localdate():%Y-%m-%d}"' in html  # today unless changed
    assert '<input type="submit" name="confirm" value="Yes, propose">' in html
    assert f"Propose {status}" in html
    assert "2 entitlement(s) selected" in html
    assert 'name="index"' not in html  # the submitted page is the confirmation, not a "Go"
    assert not OutboundMessage.objects.filter(proposed_end_date__isnull=False).exists()
    assert woken == []


@pytest.mark.parametrize("status", ["cancelled", "blocked"])
def test_propose_actions(registry, admin_client, woken, status, django_capture_on_commit_callbacks):
    order = make_order(registry, 3)
    ids = list(order.entitlements.order_by("id").values_list("pk", flat=True))
    Entitlement.objects.filter(pk=ids[0]).update(status="licensed")
    action = "propose_cancel" if status == "cancelled" else "propose_block"
    with django_capture_on_commit_callbacks(execute=True):
        response = confirm(admin_client, ENTITLEMENTS, action, ids, end_date="2026-11-30")
    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    assert len(messages) == 1 and messages[0].startswith(f"Proposed {status}")
    assert "endDate 2026-11-30" in messages[0]
    proposals = OutboundMessage.objects.filter(proposed_end_date=dt.date(2026, 11, 30))
    assert set(proposals.values_list("requested_by", flat=True)) == {"admin"}
    to_licensor = proposals.filter(recipient=registry.licensor, proposed_entitlement_status=status)
    expected = ids[1:] if status == "cancelled" else ids  # a licence can be blocked, not cancelled
    assert sorted(to_licensor.values_list("entitlement_id", flat=True)) == expected
    to_portal = proposals.filter(recipient=registry.portal, proposed_url_status=status)
    assert sorted(to_portal.values_list("entitlement_id", flat=True)) == expected
    # Statuses are unchanged until the parties confirm.
    assert Entitlement.objects.filter(status__in=["cancelled", "blocked"]).count() == 0
    assert set(woken) == {registry.licensor.pk, registry.portal.pk}
    # The same action again proposes nothing new.
    confirm(admin_client, ENTITLEMENTS, action, ids, end_date="2026-12-31")
    assert OutboundMessage.objects.filter(proposed_end_date__isnull=False).count() == 2 * len(
        expected
    )


@pytest.mark.parametrize("end_date", ["", "31-02-2026", "tomorrow", "2026-02-30"])
def test_an_invalid_end_date_shows_the_page_again_and_writes_nothing(
    registry, admin_client, woken, end_date
):
    order = make_order(registry, 2)
    ids = list(order.entitlements.values_list("pk", flat=True))
    before = OutboundMessage.objects.count()
    response = confirm(admin_client, ENTITLEMENTS, "propose_cancel", ids, end_date=end_date)
    assert response.status_code == 200
    html = response.content.decode()
    assert '<input type="date" name="end_date"' in html and "errorlist" in html
    assert '<input type="submit" name="confirm" value="Yes, propose">' in html
    assert html.count('name="_selected_action"') == 2  # the selection is kept
    assert OutboundMessage.objects.count() == before
    assert woken == []


def test_select_across_carries_through_the_page(registry, admin_client, woken):
    order = make_order(registry, 3)
    ids = list(order.entitlements.order_by("id").values_list("pk", flat=True))
    page = go(admin_client, ENTITLEMENTS, "propose_block", ids[:1], select_across=1)
    assert "3 entitlement(s) selected" in page.content.decode()
    assert 'name="select_across" value="1"' in page.content.decode()
    confirm(
        admin_client, ENTITLEMENTS, "propose_block", ids[:1], select_across=1, end_date="2026-10-1"
    )
    proposed = OutboundMessage.objects.filter(
        recipient=registry.licensor, proposed_entitlement_status="blocked"
    )
    assert sorted(proposed.values_list("entitlement_id", flat=True)) == ids
