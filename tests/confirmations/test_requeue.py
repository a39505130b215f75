"""Re-queueing rejected confirmations after the data was fixed (docs/support-desk.md,
"Actions"): only rejected rows go back to pending, with who and when; the worker then applies
them; the admin asks first; the timeline shows it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from aanspraak.models import Party
from confirmations.models import Confirmation
from confirmations.services import requeue
from confirmations.services.apply import apply_all_pending
from confirmations.services.requeue import requeue_rejected
from entitlements.models import EntitlementUrlStatus
from tests.support.confirm_helpers import licensor_body, portal_body, request_to, store
from tests.support.factories import make_order
from tests.support.html_rows import table_rows

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/confirmations/confirmation/"


@pytest.fixture
def wakes(monkeypatch):
    """The apply workers' wake-ups, recorded instead of poking the waker thread."""
    calls: list[int] = []
    monkeypatch.setattr(requeue, "request_wake", lambda: calls.append(1))
    return calls


@pytest.fixture
def story(registry):
    """One entitlement with an applied confirmation (the registry's), a rejected one (the
    portal's: the registry file had the portal's portalId wrong; since fixed) and a pending
    one (a repeat of the registry's)."""
    entitlement = make_order(registry, 1).entitlements.get()
    to_licensor = request_to(entitlement, registry.licensor)
    store(registry.licensor, licensor_body(to_licensor, receive_id="rcv-applied"))
    store(
        registry.portal,
        portal_body(request_to(entitlement, registry.portal), receive_id="rcv-rejected"),
    )
    Party.objects.filter(pk=registry.portal.pk).update(portal_id="portal-zuid-typo")
    apply_all_pending()
    store(registry.licensor, licensor_body(to_licensor, receive_id="rcv-pending"))
    Party.objects.filter(pk=registry.portal.pk).update(portal_id="portal-zuid")  # fixed
    rows = {c.receive_id: c for c in Confirmation.objects.all()}
    assert {k: c.state for k, c in rows.items()} == {
        "rcv-applied": "applied",
        "rcv-rejected": "rejected",
        "rcv-pending": "pending",
    }
    assert "portal-zuid-typo" in rows["rcv-rejected"].reason
    return entitlement


def states() -> dict[str, tuple]:
    return {
        c.receive_id: (c.state, c.requeued_by) for c in Confirmation.objects.order_by("receive_id")
    }


def test_only_rejected_rows_go_back_and_the_worker_applies_them(
    registry, story, wakes, django_capture_on_commit_callbacks
):
    applied_before = Confirmation.objects.get(receive_id="rcv-applied")
    with django_capture_on_commit_callbacks(execute=True):
        assert requeue_rejected(Confirmation.objects.all(), requested_by="alice") == 1
    assert wakes == [1]  # the workers are woken, after the commit
    assert states() == {
        "rcv-applied": ("applied", ""),
        "rcv-pending": ("pending", ""),
        "rcv-rejected": ("pending", "alice"),
    }
    back = Confirmation.objects.get(receive_id="rcv-rejected")
    assert back.requeued_at is not None
    assert (back.reason, back.decided_at, back.entitlement_id) == ("", None, None)
    applied = Confirmation.objects.get(receive_id="rcv-applied")
    assert (applied.decided_at, applied.reason) == (
        applied_before.decided_at,
        applied_before.reason,
    )

    apply_all_pending()  # what the woken worker does
    back.refresh_from_db()
    assert back.state == "applied" and back.entitlement_id == story.pk
    assert back.requeued_by == "alice"  # kept: the timeline shows who re-queued it
    url = EntitlementUrlStatus.objects.get(entitlement=story, portal=registry.portal)
    assert url.status == "processed"


def test_nothing_rejected_nothing_done(registry, story, wakes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        chosen = Confirmation.objects.exclude(state="rejected")
        assert requeue_rejected(chosen, requested_by="alice") == 0
    assert wakes == []
    assert states()["rcv-rejected"] == ("rejected", "")


def test_the_admin_asks_first_and_the_timeline_shows_who(
    registry, story, wakes, admin_client, django_capture_on_commit_callbacks
):
    pks = list(Confirmation.objects.values_list("pk", flat=True))
    page = admin_client.post(
        CHANGELIST, {"action": "requeue_selected", "_selected_action": pks, "index": 0}
    )
    html = page.content.decode()
    assert "3 confirmation(s) selected, of which 1 rejected" in html
    assert '<input type="submit" name="confirm" value="Yes, re-queue">' in html
    assert states()["rcv-rejected"] == ("rejected", "")  # nothing done yet

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            CHANGELIST,
            {"action": "requeue_selected", "_selected_action": pks, "confirm": "Yes, re-queue"},
            follow=True,
        )
    assert [str(m) for m in response.context["messages"]] == [
        "Re-queued 1 rejected confirmation(s); the worker applies them shortly."
    ]
    assert states()["rcv-rejected"] == ("pending", "admin")
    apply_all_pending()

    timeline = admin_client.get(reverse("admin:entitlements_entitlement_timeline", args=[story.pk]))
    rows = table_rows(timeline.content.decode(), "timeline")
    texts = [r["text"] for r in rows]
    requeued = next(i for i, t in enumerate(texts) if "Re-queued by admin" in t)
    confirmation = next(
        i for i, t in enumerate(texts) if "rcv-rejected" in t and "Confirmation:" in t
    )
    assert rows[confirmation]["cells"]["outcome"] == "applied"
    assert "rcv-rejected" in texts[requeued]
    processed = next(
        i
        for i, r in enumerate(rows)
        if r["cells"]["kind"] == "event" and "→ processed" in r["text"]
    )
    assert confirmation < requeued < processed  # received, re-queued, then applied
