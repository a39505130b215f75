"""Re-sending outbound messages on request (admin)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from entitlements import outbox
from entitlements.models import OutboundMessage
from entitlements.statuses import MessageState


def resend_messages(messages: QuerySet[OutboundMessage], requested_by: str = "") -> int:
    """Put the selected messages back in the queue, due now (failed, delivered or pending
    alike), with a fresh retry horizon (``queued_at``) and attempt count, and wake their
    recipients' drains. Their attempt history (DeliveryAttempt) is kept; the body is rendered
    again from the current data when sent. A drain still sending one of them loses its lease
    (``next_attempt_at`` changes), so its late result cannot undo the re-send.
    ``requested_by``, the staff user of the admin action, is kept as the messages'
    ``resent_by`` (docs/security.md, "Audit"). Returns how many were queued."""
    now = timezone.now()
    with transaction.atomic():
        recipients = set(messages.values_list("recipient_id", flat=True).distinct())
        count = messages.update(
            state=MessageState.PENDING,
            next_attempt_at=now,
            queued_at=now,
            attempt_count=0,
            last_error="",
            **({"resent_by": requested_by} if requested_by else {}),
        )
        outbox.wake_after_commit(recipients)
    return count
