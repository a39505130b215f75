"""Re-sending outbound messages on request (admin; docs/support-desk.md, "Actions")."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from entitlements import outbox
from entitlements.models import OutboundMessage
from entitlements.statuses import MessageState

# What a re-send takes: a failed message, or a stuck one, pending after at least one attempt
# (waiting out its back-off, its recipient down or refusing). A delivered message is not
# sent twice, and one never tried is already first in its recipient's queue.
RESENDABLE = Q(state=MessageState.FAILED) | Q(state=MessageState.PENDING, attempt_count__gt=0)


def count_resendable(messages: QuerySet[OutboundMessage]) -> int:
    """How many of ``messages`` a re-send would take (one query)."""
    return messages.filter(RESENDABLE).count()


def resend_messages(messages: QuerySet[OutboundMessage], requested_by: str = "") -> int:
    """Put the failed and stuck ones of the selected messages (``RESENDABLE``) back in the
    queue, due now, with a fresh retry horizon (``queued_at``) and attempt count, and wake
    their recipients' drains; delivered and never-tried ones are left as they are. Their
    attempt history (DeliveryAttempt) is kept; the body is rendered again from the current
    data when sent. A drain still sending one of them loses its lease (``next_attempt_at``
    changes), so its late result cannot undo the re-send. ``requested_by``, the staff user of
    the admin action, is kept as the messages' ``resent_by`` (docs/security.md, "Audit").
    Returns how many were queued."""
    now = timezone.now()
    with transaction.atomic():
        # By primary key: the admin's queryset may be distinct (search), which an UPDATE
        # does not take.
        chosen = OutboundMessage.objects.filter(pk__in=messages.values("pk")).filter(RESENDABLE)
        recipients = set(chosen.values_list("recipient_id", flat=True).distinct())
        count = chosen.update(
            state=MessageState.PENDING,
            next_attempt_at=now,
            queued_at=now,
            attempt_count=0,
            last_error="",
            **({"resent_by": requested_by} if requested_by else {}),
        )
        outbox.wake_after_commit(recipients)
    return count
