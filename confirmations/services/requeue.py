"""Re-queueing rejected confirmations once the data that made them fail was fixed
(docs/support-desk.md, "Actions").

A rejected confirmation is final for the worker; when the cause was on the hub's side (a
portalId or product wrong in the registry, an internal error that set it aside) the support
desk fixes the data and puts it back: it becomes pending again, as if just received, and the
apply worker checks and replays it like any other (services/apply.py). The party's own data
(the body, the receive id, the timestamps) is never changed.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from confirmations.models import Confirmation, ConfirmationState
from entitlements.rules.transitions import Outcome

from .wake import request_wake

log = logging.getLogger(__name__)


def count_rejected(confirmations: QuerySet[Confirmation]) -> int:
    """How many of ``confirmations`` are rejected, i.e. would be re-queued (one query)."""
    return confirmations.filter(state=Outcome.REJECTED).count()


def requeue_rejected(confirmations: QuerySet[Confirmation], requested_by: str) -> int:
    """Put the rejected ones of ``confirmations`` back in the queue: pending, undecided (no
    outcome, reason or resolved entitlement), with ``requeued_by`` (the staff user's name)
    and ``requeued_at``. Applied, duplicate, stale and pending rows are left as they are.
    One UPDATE whatever the selection's size; the apply workers are woken after commit, as
    a receive wakes them (services/wake.py). Returns how many were re-queued."""
    now = timezone.now()
    with transaction.atomic():
        # By primary key: the admin's queryset may be ordered or distinct (search), which
        # an UPDATE does not take.
        count = Confirmation.objects.filter(
            pk__in=confirmations.values("pk"), state=Outcome.REJECTED
        ).update(
            state=ConfirmationState.PENDING,
            reason="",
            decided_at=None,
            entitlement=None,
            message=None,
            requeued_by=requested_by,
            requeued_at=now,
        )
        if count:
            transaction.on_commit(request_wake)
    log.info("re-queued %d rejected confirmations (by %s)", count, requested_by or "the hub")
    return count
