"""Waking the drains after a commit, and which recipients have messages due."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from aanspraak.enqueue import enqueue_quietly
from aanspraak.models import Party
from entitlements.models import (
    OutboundMessage,
)
from entitlements.statuses import MessageState

log = logging.getLogger(__name__)

DRAIN_TASK = "entitlements.tasks.drain_recipient"


def wake_after_commit(recipient_ids: Iterable[int | None]) -> None:
    """Enqueue a drain for each recipient once the current transaction commits. A broker
    that is down only delays delivery (the sweep finds the messages later): the error is
    logged, never raised, and costs one quick connection attempt."""
    ids = sorted({r for r in recipient_ids if r})
    if not ids:
        return

    def wake() -> None:
        enqueue_quietly(DRAIN_TASK, [(recipient_id,) for recipient_id in ids])

    transaction.on_commit(wake, robust=True)


def due_recipients(now: dt.datetime | None = None) -> list[int]:
    """The recipients that have messages due now.

    Two existence probes per party (never tried; retry due) on the claim's partial index,
    instead of reading every pending message: the parties are few, a backlog is not."""
    now = now or timezone.now()
    pending = OutboundMessage.objects.filter(recipient=OuterRef("pk"), state=MessageState.PENDING)
    return list(
        Party.objects.filter(
            Exists(pending.filter(next_attempt_at__isnull=True))
            | Exists(pending.filter(next_attempt_at__lte=now))
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
