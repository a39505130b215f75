"""Replaying a checked batch: lock the affected entitlements and their URL statuses, fold
all their accepted confirmations (``confirmations.replay``) and write the result
set-based (``services/apply.py``, steps 3 to 5)."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Case, F, JSONField, When

from confirmations.models import Confirmation, ConfirmationKind
from confirmations.replay import Event, expiry_event, fold
from entitlements.models import Entitlement, EntitlementUrlStatus, OutboundMessage
from entitlements.rules.expiry import expiry_moment, hub_tz, is_due
from entitlements.rules.transitions import Decision, Outcome
from entitlements.status import (
    LockedEntitlement,
    LockedUrlStatus,
    TargetState,
    write_states,
)
from entitlements.statuses import (
    ACTIVATION_CODE_TYPES,
    EntitlementStatus,
    EventCause,
    MessageKind,
    MessageState,
    UrlStatus,
)

from .claim import ClaimedRow, activation_body

log = logging.getLogger(__name__)

ACCEPTED_STATES = [Outcome.APPLIED, Outcome.DUPLICATE, Outcome.STALE]


@dataclass
class Replayed:
    outcomes: dict[int, Decision] = field(default_factory=dict)
    entitlements: int = 0
    events: int = 0
    # (pk, state, reason, entitlement, message) of earlier rows the replay changed
    redecided: list[tuple] = field(default_factory=list)


def _event_of(row: ClaimedRow) -> Event:
    is_activation = row.kind == ConfirmationKind.ACTIVATION
    return Event(
        effective_at=row.processed_timestamp,
        ref=row.receive_id,
        sender=row.sender,
        cause=EventCause.ACTIVATION if is_activation else EventCause.CONFIRMATION,
        pk=row.pk,
        new_status=row.new_status or None,
        proposed_status=row.proposed_status,
        proposed_end_date=row.proposed_end_date,
        portal=row.recipient if row.new_url_status else None,
        new_url_status=row.new_url_status or None,
        proposed_url_status=row.proposed_url_status,
        user=(row.body or {}).get("user") if is_activation else None,
    )


LOCK_FIELDS = (
    "pk",
    "entitlement_type",
    "status",
    "end_date",
    "status_changed_at",
    "user_master_identifier",
    "user_ids",
    "code_specification",
    "delivery_order__expiration_date",
)

# ClaimedRow's attribute -> the column it is read from, for the earlier accepted
# confirmations the fold replays (the attributes not listed are only read by the checks, or
# come from the request the confirmation answered: ``REQUEST_FIELDS``).
EARLIER_FIELDS = {
    "pk": "id",
    "sender": "sender_id",
    "kind": "kind",
    "receive_id": "receive_id",
    "processed_timestamp": "processed_timestamp",
    "new_status": "new_entitlement_status",
    "new_url_status": "new_url_status",
    "body": "activation_body",
    "entitlement": "entitlement_id",
    "message": "message_id",
    "state": "state",
    "reason": "reason",
}
# The Entitlement requests of the locked entitlements: what the fold needs of the request each
# earlier confirmation answered, and which portal requests were delivered. Read by entitlement
# in one query of their own: joined into the earlier confirmations' query, PostgreSQL hashed
# the whole messages table for every batch (docs/performance.md, P3).
REQUEST_FIELDS = (
    "id",
    "entitlement_id",
    "recipient_id",
    "state",
    "proposed_entitlement_status",
    "proposed_end_date",
    "proposed_url_status",
)
NOT_REPLAYED = {
    "sender_name": "",
    "reference_id": "",
    "entitlement_ref": "",
    "product_id": "",
    "url_portal": None,
}


def _earlier(values: tuple, requests: dict[int, tuple]) -> ClaimedRow:
    """An earlier accepted confirmation as the fold reads it, with its request's proposal."""
    row = ClaimedRow(**dict(zip(EARLIER_FIELDS, values, strict=True)), **NOT_REPLAYED)
    if row.message is not None:  # activations answer no request
        _, _, row.recipient, _, row.proposed_status, row.proposed_end_date, url = requests[
            row.message
        ]
        row.proposed_url_status = url
    return row


def _lock_entitlements(ids: list[int], skip_locked: bool) -> dict[int, tuple]:
    # FOR NO KEY UPDATE: it still serialises workers, but not the KEY SHARE that an insert of
    # a StatusEvent pointing at the entitlement takes (at commit: Django's foreign keys are
    # deferred); FOR UPDATE would deadlock with a delivery that holds a URL status row and
    # commits its events.
    rows = (
        Entitlement.objects.filter(pk__any=ids)
        .annotate(
            # The specification is only rewritten when an activation code's binding changes.
            code_specification=Case(
                When(entitlement_type__in=ACTIVATION_CODE_TYPES, then=F("specification")),
                default=None,
                output_field=JSONField(),
            )
        )
        .select_for_update(of=("self",), no_key=True, skip_locked=skip_locked)
        .order_by("pk")
        .values_list(*LOCK_FIELDS)
    )
    return {row[0]: row for row in rows}


def replay_batch(accepted: list[ClaimedRow], now: dt.datetime) -> Replayed:
    """Lock the affected entitlements, fold all their accepted confirmations, write."""
    tz = hub_tz()
    wanted = sorted({row.entitlement for row in accepted})
    # Lock order everywhere (here, the expiry job, mark_initialized): entitlements by id, then
    # their URL statuses by id. Entitlements another worker holds are skipped: their
    # confirmations stay pending (uncounted) and a later batch takes them, instead of this
    # worker waiting for that one's commit. Only when it holds none of them it waits.
    locked = _lock_entitlements(wanted, skip_locked=True)
    if not locked:
        locked = _lock_entitlements(wanted, skip_locked=False)
    ids = sorted(locked)
    accepted = [row for row in accepted if row.entitlement in locked]
    # Locking the URL statuses keeps a concurrent delivery (uninitialized → initialized)
    # from changing a row between our read and our write; the delivered requests are read
    # after the lock, so they agree with the rows we hold.
    url_rows = {
        (u.entitlement_id, u.portal_id): u
        for u in map(
            lambda values: LockedUrlStatus(*values),
            EntitlementUrlStatus.objects.filter(entitlement_id__any=ids)
            .select_for_update()
            .order_by("id")
            .values_list("id", "entitlement_id", "portal_id", "status", "status_changed_at"),
        )
    }
    requests = {
        values[0]: values
        for values in OutboundMessage.objects.filter(
            entitlement_id__any=ids, kind=MessageKind.ENTITLEMENT_REQUEST
        ).values_list(*REQUEST_FIELDS)
    }
    delivered = {
        (entitlement, recipient)
        for _, entitlement, recipient, state, _, _, proposed_url in requests.values()
        if state == MessageState.DELIVERED and proposed_url == UrlStatus.INITIALIZED
    }
    earlier = [
        _earlier(values, requests)
        for values in Confirmation.objects.filter(
            entitlement_id__any=ids, state__in=ACCEPTED_STATES
        )
        .annotate(activation_body=activation_body())
        .values_list(*EARLIER_FIELDS.values())
    ]
    by_entitlement: dict[int, list[Event]] = defaultdict(list)
    for row in [*earlier, *accepted]:
        by_entitlement[row.entitlement].append(_event_of(row))

    # Base URL status: initialized once the request to that portal was delivered.
    base_urls: dict[int, dict[int, str]] = defaultdict(dict)
    for entitlement_pk, portal in url_rows:
        base_urls[entitlement_pk][portal] = (
            UrlStatus.INITIALIZED
            if (entitlement_pk, portal) in delivered
            else UrlStatus.UNINITIALIZED
        )

    outcomes: dict[int, Decision] = {}
    targets = []
    for pk in ids:
        (_, etype, status, end_date, changed_at, master, user_ids, spec, expiration) = locked[pk]
        events = by_entitlement[pk]
        # Due by our clock, or already applied by the expiry job: either way the expiry is
        # one event of the fold, at the same moment the job uses (``entitlements.rules.expiry``).
        if expiration is not None and (
            status == EntitlementStatus.EXPIRED or is_due(expiration, now, tz)
        ):
            events.append(expiry_event(expiry_moment(expiration, tz)))
        folded = fold(base_urls[pk], events, tz)
        outcomes.update(folded.outcomes)
        targets.append(
            TargetState(
                entitlement=LockedEntitlement(
                    pk, etype, status, end_date, changed_at, master, user_ids, spec
                ),
                status=folded.status,
                status_cause=folded.status_cause,
                end_date=folded.end_date,
                urls={p: (s, folded.url_causes[p]) for p, s in folded.urls.items()},
                user=folded.user,
                derive_user=True,
            )
        )
    written = write_states(targets, url_rows, now)

    redecided = []
    for row in earlier:
        decision = outcomes[row.pk]
        if (row.state, row.reason) != (decision.outcome.value, decision.reason):
            redecided.append(
                (row.pk, decision.outcome.value, decision.reason, row.entitlement, row.message)
            )
    return Replayed(outcomes, written.entitlements, written.events, redecided)
