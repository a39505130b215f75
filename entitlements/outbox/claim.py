"""Claiming a batch of one recipient's due messages, with a lease."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from entitlements.models import (
    OutboundMessage,
)
from entitlements.statuses import MessageState
from entitlements.worker_settings import lease_seconds as worker_lease_seconds
from entitlements.worker_settings import setting

log = logging.getLogger(__name__)


def batch_size() -> int:
    return setting("HUB_OUTBOUND_BATCH_SIZE", 100)


def lease_seconds() -> float:
    return worker_lease_seconds(batch_size())


@dataclass(frozen=True)
class Claim:
    """Messages one worker claimed, and its lease: the ``next_attempt_at`` it gave them. A
    message whose ``next_attempt_at`` no longer equals the lease has been taken over (the
    lease ran out and another drain claimed it) or re-sent: its result must not be written."""

    ids: list[int]
    lease: dt.datetime | None = None

    def __len__(self) -> int:
        return len(self.ids)


def claim_due(recipient_id: int, limit: int | None = None) -> Claim:
    """Claim up to ``limit`` due messages of one recipient for this worker: lock them
    (skipping rows other workers hold) and lease them by moving ``next_attempt_at`` ahead.

    Due retries (``next_attempt_at <= now``) come first, then messages never tried
    (``next_attempt_at`` null), each in (next_attempt_at, id) order: two range scans of the
    pending index on (recipient, next_attempt_at, id), which stop after ``limit`` rows
    however many are due. (One ``<= now OR IS NULL`` scan would walk every leased and
    backed-off row before the never-tried ones, which sort last.)"""
    now = timezone.now()
    lease = now + dt.timedelta(seconds=lease_seconds())
    limit = limit or batch_size()
    pending = (
        OutboundMessage.objects.select_for_update(skip_locked=True)
        .filter(state=MessageState.PENDING, recipient_id=recipient_id)
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)
    )
    with transaction.atomic():
        ids = list(pending.filter(next_attempt_at__lte=now)[:limit])
        if len(ids) < limit:
            ids += pending.filter(next_attempt_at__isnull=True)[: limit - len(ids)]
        if ids:
            OutboundMessage.objects.filter(id__in=ids).update(next_attempt_at=lease)
    return Claim(ids, lease)


def due_filter(now: dt.datetime) -> Q:
    return Q(state=MessageState.PENDING) & (
        Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True)
    )
