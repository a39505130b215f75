"""The one writer of status changes: every change of an entitlement's status or of a URL
status, whatever its cause (confirmation, activation, delivery, expiry, enrollment, admin),
is written by ``write_changes``, which checks it against the transition table
(``entitlements.rules.transitions.MOVES``) and writes its ``StatusEvent``.

``write_changes`` takes plain rows (``StatusChange``, ``UrlChange``) of rows the caller has
locked and writes them set-based: one UPDATE for the entitlements, one for the URL statuses,
one INSERT for the events, whatever the number of rows; the check is a lookup in the table's
sets, in memory. A move the table does not hold raises ``IllegalMove`` (and so rolls back the
caller's transaction): the callers filter on the table first (``sources``), so it is a
programming error, never a race.

``write_states`` is the confirmation worker's way in: it compares the state each *locked*
entitlement should have (``TargetState``, the fold of its confirmations) with the rows as
loaded and hands the differences to ``write_changes``. The rows are plain values
(``LockedEntitlement``, ``LockedUrlStatus``), not model instances: building and diffing ORM
objects dominated the worker's profile (docs/performance.md, "P3: the apply worker").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from aanspraak.db.recordset import insert_rows, update_rows
from entitlements.models import Entitlement, EntitlementUrlStatus, StatusEvent
from entitlements.rules.transitions import MOVES, Cause, Subject
from entitlements.statuses import ACTIVATION_CODE_TYPES, END_DATE_STATUSES


class StatusChange(NamedTuple):
    """An entitlement's status ``old`` → ``new`` (``new == old``: only its timestamp or
    endDate moves, no event). ``end_date`` is kept for cancelled and blocked only."""

    pk: int
    old: str
    new: str
    end_date: dt.date | None
    cause: Cause


class UrlChange(NamedTuple):
    """A URL status row ``pk`` (of ``entitlement`` at ``portal``) ``old`` → ``new``."""

    pk: int
    entitlement: int
    portal: int
    old: str
    new: str
    cause: Cause


class IllegalMove(ValueError):
    """A status change the transition table does not allow."""


# What a replay may write: any status the table knows. A replay re-derives the state from
# the base (created; the URL's base status) by folding every confirmation through
# ``decide``, so each step was checked against the table; its net change from the row as it
# was (cancelled → licensed when a late, earlier activation makes the cancel stale) is the
# sum of those steps, not one move (docs/confirmations.md, "The rules").
KNOWN = {subject: frozenset(table) for subject, table in MOVES.items()}


@dataclass
class Written:
    """What ``write_changes`` wrote: rows updated, events inserted."""

    entitlements: int = 0
    url_statuses: int = 0
    events: int = 0


STATUS_FIELDS = ["status", "end_date", "status_changed_at"]
BINDING_FIELDS = ["user_master_identifier", "user_ids", "specification"]
URL_FIELDS = ["status", "status_changed_at"]
EVENT_FIELDS = [
    "entitlement",
    "portal",
    "from_status",
    "to_status",
    "cause",
    "cause_pk",
    "cause_ref",
    "effective_at",
]


def write_changes(
    statuses: Sequence[StatusChange],
    urls: Sequence[UrlChange],
    now: dt.datetime,
    *,
    replay: bool = False,
) -> Written:
    """Write status changes of locked rows, each with its ``StatusEvent`` (none when the
    status stays), set-based; ``status_changed_at`` becomes the cause's ``effective_at``.

    Every move must be in the transition table (``MOVES``), else ``IllegalMove`` is raised
    before anything is written. ``replay``: the changes are the fold of all of an
    entitlement's confirmations (``write_states``), checked step by step by ``decide``;
    here they need only be statuses the table knows (see ``KNOWN``). Must run inside the
    transaction that holds the rows' locks (entitlements by id, then URL statuses by id:
    docs/decisions/0003-lock-order.md)."""
    moves = KNOWN if replay else None
    events: list[tuple] = []
    status_rows: list[tuple] = []
    allowed = moves[Subject.ENTITLEMENT] if moves else None
    table = MOVES[Subject.ENTITLEMENT]
    for pk, old, new, end_date, cause in statuses:
        if new != old:
            if new not in (allowed if allowed is not None else table.get(old, ())):
                raise IllegalMove(_refusal(Subject.ENTITLEMENT, pk, old, new, cause))
            events.append(_event(pk, None, old, new, cause))
        # endDate belongs to cancelled/blocked; a replay that undoes one clears it.
        kept = end_date if new in END_DATE_STATUSES else None
        status_rows.append((pk, new, kept, cause.effective_at))
    url_rows: list[tuple] = []
    allowed = moves[Subject.URL] if moves else None
    table = MOVES[Subject.URL]
    for pk, entitlement, portal, old, new, cause in urls:
        if new != old:
            if new not in (allowed if allowed is not None else table.get(old, ())):
                raise IllegalMove(_refusal(Subject.URL, entitlement, old, new, cause, portal))
            events.append(_event(entitlement, portal, old, new, cause))
        url_rows.append((pk, new, cause.effective_at))

    # Bulk statements do not touch auto_now fields: date_last_modified is set here.
    modified = {"date_last_modified": now}
    update_rows(Entitlement, STATUS_FIELDS, status_rows, modified)
    update_rows(EntitlementUrlStatus, URL_FIELDS, url_rows, modified)
    insert_rows(StatusEvent, EVENT_FIELDS, events, {"recorded_at": now})
    return Written(len(status_rows), len(url_rows), len(events))


def _refusal(
    subject: Subject, entitlement: int, old: str, new: str, cause: Cause, portal: int | None = None
) -> str:
    what = "status" if subject is Subject.ENTITLEMENT else f"URL status at portal {portal}"
    return (
        f"entitlement {entitlement}: {what} {old} → {new} is not in the transition table "
        f"(cause {cause.cause} {cause.ref or cause.pk or ''})".rstrip()
    )


def _event(entitlement: int, portal: int | None, old: str, new: str, cause: Cause) -> tuple:
    return (entitlement, portal, old, new, cause.cause, cause.pk, cause.ref, cause.effective_at)


# --- the confirmation worker's diff -------------------------------------------------------


@dataclass(slots=True)
class LockedEntitlement:
    """The columns of a locked entitlement that a replay reads and may write.
    ``specification`` is loaded for activation-code entitlements only (the user binding)."""

    pk: int
    entitlement_type: str
    status: str
    end_date: dt.date | None
    status_changed_at: dt.datetime | None
    user_master_identifier: str | None = None
    user_ids: list | None = None
    specification: dict | None = None


@dataclass(slots=True)
class LockedUrlStatus:
    """A locked URL status row."""

    pk: int
    entitlement_id: int
    portal_id: int
    status: str
    status_changed_at: dt.datetime | None


@dataclass(slots=True)
class TargetState:
    """The state an entitlement should have.

    ``status_cause`` None means "nothing set the status": the row's status is left alone.
    ``urls`` maps portal party pk to (status, cause); a None cause leaves that URL alone.
    ``user`` (a UserReference) binds an activation-code entitlement to its activating user;
    with ``derive_user`` the binding is exactly ``user`` (None unbinds: a replay found that
    no activation counts any more), otherwise a None ``user`` leaves the binding alone.
    """

    entitlement: LockedEntitlement
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


def write_states(
    targets: list[TargetState],
    url_rows: dict[tuple[int, int], LockedUrlStatus],
    now: dt.datetime,
) -> WriteResult:
    """Bring the locked ``targets`` (and their ``url_rows``, keyed by (entitlement pk,
    portal pk)) to their target state: the differences go to ``write_changes`` (as a
    replay), an activation code's user binding to one UPDATE of its own. Must run inside the
    transaction holding the locks."""
    statuses: list[StatusChange] = []
    bindings: list[tuple] = []
    urls: list[UrlChange] = []
    changed: set[int] = set()
    for target in targets:
        row = target.entitlement
        cause = target.status_cause
        if cause is not None:
            end_date = target.end_date if target.status in END_DATE_STATUSES else None
            if (target.status, end_date, cause.effective_at) != (
                row.status,
                row.end_date,
                row.status_changed_at,
            ):
                statuses.append(StatusChange(row.pk, row.status, target.status, end_date, cause))
                row.status, row.end_date = target.status, end_date
                row.status_changed_at = cause.effective_at
                changed.add(row.pk)
        if (target.user is not None or target.derive_user) and _bind_user(row, target.user):
            bindings.append((row.pk, row.user_master_identifier, row.user_ids, row.specification))
            changed.add(row.pk)
        for portal, (status, url_cause) in target.urls.items():
            url_row = url_rows.get((row.pk, portal))
            if url_cause is None or url_row is None:
                continue
            if (url_row.status, url_row.status_changed_at) != (status, url_cause.effective_at):
                urls.append(
                    UrlChange(url_row.pk, row.pk, portal, url_row.status, status, url_cause)
                )
                url_row.status, url_row.status_changed_at = status, url_cause.effective_at

    update_rows(Entitlement, BINDING_FIELDS, bindings, {"date_last_modified": now})
    written = write_changes(statuses, urls, now, replay=True)
    return WriteResult(len(changed), written.url_statuses, written.events)


def _bind_user(row: LockedEntitlement, user: dict | None) -> bool:
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
