"""Write derived states to entitlements and URL statuses, with a status event per change.

Callers (the confirmation worker) decide the target state
of each *locked* entitlement; ``write_states`` compares it with the rows as loaded and writes
only the differences, set-based: one UPDATE for the entitlements, one for the URL statuses,
one INSERT for the events, whatever the number of rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from entitlements.models import Entitlement, EntitlementUrlStatus, StatusEvent
from entitlements.statuses import ACTIVATION_CODE_TYPES, END_DATE_STATUSES
from entitlements.transitions import Cause


@dataclass
class TargetState:
    """The state an entitlement should have.

    ``status_cause`` None means "nothing set the status": the row's status is left alone.
    ``urls`` maps portal party pk to (status, cause); a None cause leaves that URL alone.
    ``user`` (a UserReference) binds an activation-code entitlement to its activating user;
    with ``derive_user`` the binding is exactly ``user`` (None unbinds: a replay found that
    no activation counts any more), otherwise a None ``user`` leaves the binding alone.
    """

    entitlement: Entitlement
    status: str
    status_cause: Cause | None
    end_date: dt.date | None
    urls: dict[int, tuple[str, Cause | None]] = field(default_factory=dict)
    user: dict | None = None
    derive_user: bool = False


@dataclass
class WriteResult:
    entitlements: int = 0
    url_statuses: int = 0
    events: int = 0


ENTITLEMENT_FIELDS = [
    "status",
    "end_date",
    "status_changed_at",
    "user_master_identifier",
    "user_ids",
    "specification",
    "date_last_modified",
]


def write_states(
    targets: list[TargetState],
    url_rows: dict[tuple[int, int], EntitlementUrlStatus],
    now: dt.datetime,
) -> WriteResult:
    """Bring the locked ``targets`` (and their ``url_rows``, keyed by (entitlement pk,
    portal pk)) to their target state. Must run inside the transaction holding the locks."""
    changed_entitlements: list[Entitlement] = []
    changed_urls: list[EntitlementUrlStatus] = []
    events: list[StatusEvent] = []
    for target in targets:
        row = target.entitlement
        dirty = False
        cause = target.status_cause
        if cause is not None:
            # endDate belongs to cancelled/blocked; a replay that undoes one clears it.
            end_date = target.end_date if target.status in END_DATE_STATUSES else None
            if target.status != row.status:
                events.append(_event(row.pk, None, row.status, target.status, cause))
            if (target.status, end_date, cause.effective_at) != (
                row.status,
                row.end_date,
                row.status_changed_at,
            ):
                row.status, row.end_date = target.status, end_date
                row.status_changed_at = cause.effective_at
                dirty = True
        if (target.user is not None or target.derive_user) and _bind_user(row, target.user):
            dirty = True
        if dirty:
            row.date_last_modified = now  # bulk_update does not touch auto_now fields
            changed_entitlements.append(row)
        for portal, (status, url_cause) in target.urls.items():
            url_row = url_rows.get((row.pk, portal))
            if url_cause is None or url_row is None:
                continue
            if url_row.status != status:
                events.append(_event(row.pk, portal, url_row.status, status, url_cause))
            if (url_row.status, url_row.status_changed_at) != (status, url_cause.effective_at):
                url_row.status, url_row.status_changed_at = status, url_cause.effective_at
                url_row.date_last_modified = now
                changed_urls.append(url_row)

    if changed_entitlements:
        Entitlement.objects.bulk_update(changed_entitlements, ENTITLEMENT_FIELDS)
    if changed_urls:
        EntitlementUrlStatus.objects.bulk_update(
            changed_urls, ["status", "status_changed_at", "date_last_modified"]
        )
    if events:
        StatusEvent.objects.bulk_create(events)
    return WriteResult(len(changed_entitlements), len(changed_urls), len(events))


def _bind_user(row: Entitlement, user: dict | None) -> bool:
    """Bind an activation-code entitlement to ``user`` (None: unbind); False when nothing
    changes. Other entitlements keep the user they were ordered for."""
    if row.entitlement_type not in ACTIVATION_CODE_TYPES:
        return False
    master = user.get("userMasterIdentifier") if user else None
    ids = user.get("userIds") if user else None
    if (row.user_master_identifier, row.user_ids) == (master, ids):
        return False
    row.user_master_identifier, row.user_ids = master, ids
    specification = {k: v for k, v in (row.specification or {}).items() if k != "user"}
    row.specification = {**specification, "user": user} if user else specification
    return True


def _event(entitlement: int, portal: int | None, old: str, new: str, cause: Cause) -> StatusEvent:
    return StatusEvent(
        entitlement_id=entitlement,
        portal_id=portal,
        from_status=old,
        to_status=new,
        cause=cause.cause,
        cause_pk=cause.pk,
        cause_ref=cause.ref,
        effective_at=cause.effective_at,
    )
