"""Claiming a batch of one recipient's due messages, with a lease (``aanspraak.workers``)."""

from __future__ import annotations

import datetime as dt
import logging

from django.db.models import Q
from django.utils import timezone

from aanspraak.workers import Claim, claim_leased
from aanspraak.workers.tuning import lease_seconds as worker_lease_seconds
from aanspraak.workers.tuning import setting
from entitlements.models import OutboundMessage
from entitlements.statuses import MessageState

__all__ = ["Claim", "batch_size", "claim_due", "due_filter", "lease_seconds"]

log = logging.getLogger(__name__)


def batch_size() -> int:
    return setting("HUB_OUTBOUND_BATCH_SIZE", 100)


def lease_seconds() -> float:
    return worker_lease_seconds(batch_size())


def claim_due(
    recipient_id: int, limit: int | None = None, due_by: dt.datetime | None = None
) -> Claim:
    """Claim up to ``limit`` due messages of one recipient for this worker: lock them
    (skipping rows other workers hold) and lease them by moving ``next_attempt_at`` ahead.

    ``due_by`` (default now) is the moment a retry must have been due by: a drain passes its
    start, so a message it failed is never tried twice in one drain, however short the
    jitter made its wait (the drain reports ``more`` and is run again instead).

    Due retries (``next_attempt_at <= due_by``) come first, then messages never tried
    (``next_attempt_at`` null), each in (next_attempt_at, id) order: two range scans of the
    pending index on (recipient, next_attempt_at, id), which stop after ``limit`` rows
    however many are due. (One ``<= now OR IS NULL`` scan would walk every leased and
    backed-off row before the never-tried ones, which sort last.)"""
    now = timezone.now()
    lease = now + dt.timedelta(seconds=lease_seconds())
    pending = OutboundMessage.objects.filter(
        state=MessageState.PENDING, recipient_id=recipient_id
    ).order_by("next_attempt_at", "id")
    return claim_leased(
        [
            pending.filter(next_attempt_at__lte=min(now, due_by or now)),
            pending.filter(next_attempt_at__isnull=True),
        ],
        limit or batch_size(),
        lease,
        "next_attempt_at",
    )


def due_filter(now: dt.datetime) -> Q:
    return Q(state=MessageState.PENDING) & (
        Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True)
    )
