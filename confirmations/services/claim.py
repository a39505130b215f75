"""Claiming a batch of pending confirmations: oldest first, ``FOR UPDATE SKIP LOCKED``, as
plain rows (``services/apply.py``, step 1)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db.models import Case, F, JSONField, QuerySet, When

from confirmations.models import ConfirmationKind, ConfirmationState

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ClaimedRow:
    """A claimed or an earlier accepted confirmation: the columns the checks and the fold
    read, and what the check resolved (entitlement, request and its proposal)."""

    pk: int
    sender: int
    sender_name: str
    kind: str
    receive_id: str
    reference_id: str
    entitlement_ref: str
    product_id: str
    processed_timestamp: dt.datetime
    new_status: str | None
    url_portal: str | None
    new_url_status: str | None
    body: dict | None  # activations only
    entitlement: int | None = None
    message: int | None = None
    proposed_status: str | None = None
    proposed_end_date: dt.date | None = None
    proposed_url_status: str | None = None
    recipient: int | None = None
    state: str = ConfirmationState.PENDING
    reason: str = ""
    request_id: str | None = None  # of the PUT that stored it: for the worker's log line


def activation_body() -> Case:
    # The body is read for activations only (their checks and user binding need it).
    return Case(
        When(kind=ConfirmationKind.ACTIVATION, then=F("body")),
        default=None,
        output_field=JSONField(),
    )


CLAIM_FIELDS = (
    "id",
    "sender_id",
    "sender__name",
    "kind",
    "receive_id",
    "reference_id",
    "entitlement_ref",
    "product_id",
    "processed_timestamp",
    "new_entitlement_status",
    "url_portal",
    "new_url_status",
    "activation_body",
    "request_id",  # last: ClaimedRow takes it by name
)


def claim(pending: QuerySet, limit: int) -> list[ClaimedRow]:
    # Oldest first by received_at: the partial index on pending rows (received_at) WHERE
    # state = 'pending' serves it and is read only as far as the rows taken (and skipped).
    rows = (
        pending.annotate(activation_body=activation_body())
        .select_for_update(skip_locked=True, of=("self",))
        .order_by("received_at")
        .values_list(*CLAIM_FIELDS)[:limit]
    )
    return [ClaimedRow(*row[:-1], request_id=row[-1]) for row in rows]
