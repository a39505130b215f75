"""Write derived states to entitlements and URL statuses, with a status event per change.

Callers (the confirmation worker) decide the target state of each *locked* entitlement;
``write_states`` compares it with the rows as loaded and writes only the differences,
set-based: one UPDATE for the entitlements' statuses (and one for activation-code bindings,
when any changed), one for the URL statuses, one INSERT for the events, whatever the number
of rows. The rows are plain values (``LockedEntitlement``, ``LockedUrlStatus``), not model
instances: building and diffing ORM objects dominated the worker's profile
(docs/performance.md, "P3: the apply worker").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
from django.db import connection, models

from aanspraak.lookups import array_literal
from entitlements.models import Entitlement, EntitlementUrlStatus, StatusEvent
from entitlements.rules.transitions import Cause
from entitlements.statuses import ACTIVATION_CODE_TYPES, END_DATE_STATUSES


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


def write_states(
    targets: list[TargetState],
    url_rows: dict[tuple[int, int], LockedUrlStatus],
    now: dt.datetime,
) -> WriteResult:
    """Bring the locked ``targets`` (and their ``url_rows``, keyed by (entitlement pk,
    portal pk)) to their target state. Must run inside the transaction holding the locks."""
    statuses: list[tuple] = []
    bindings: list[tuple] = []
    urls: list[tuple] = []
    events: list[tuple] = []
    changed: set[int] = set()
    for target in targets:
        row = target.entitlement
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
                statuses.append((row.pk, row.status, end_date, cause.effective_at))
                changed.add(row.pk)
        if (target.user is not None or target.derive_user) and _bind_user(row, target.user):
            bindings.append((row.pk, row.user_master_identifier, row.user_ids, row.specification))
            changed.add(row.pk)
        for portal, (status, url_cause) in target.urls.items():
            url_row = url_rows.get((row.pk, portal))
            if url_cause is None or url_row is None:
                continue
            if url_row.status != status:
                events.append(_event(row.pk, portal, url_row.status, status, url_cause))
            if (url_row.status, url_row.status_changed_at) != (status, url_cause.effective_at):
                url_row.status, url_row.status_changed_at = status, url_cause.effective_at
                urls.append((url_row.pk, status, url_cause.effective_at))

    # Bulk statements do not touch auto_now fields: date_last_modified is set here.
    modified = {"date_last_modified": now}
    update_rows(Entitlement, STATUS_FIELDS, statuses, modified)
    update_rows(Entitlement, BINDING_FIELDS, bindings, modified)
    update_rows(EntitlementUrlStatus, URL_FIELDS, urls, modified)
    insert_rows(StatusEvent, EVENT_FIELDS, events, {"recorded_at": now})
    return WriteResult(len(changed), len(urls), len(events))


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


def _event(entitlement: int, portal: int | None, old: str, new: str, cause: Cause) -> tuple:
    return (entitlement, portal, old, new, cause.cause, cause.pk, cause.ref, cause.effective_at)


# --- set-based statements -----------------------------------------------------------------
#
# On PostgreSQL the rows travel as one JSON parameter, expanded by jsonb_to_recordset: one
# string for psycopg to quote instead of a value per row and column (Django binds parameters
# client-side, and quoting thousands of them per batch was a fifth of the worker's time).


def _columns(model: type[models.Model], names: Sequence[str]) -> list[models.Field]:
    return [model._meta.get_field(name) for name in names]


def rows_json(rows: Sequence[Sequence]) -> str:
    """``rows`` as a JSON array of arrays (dates and datetimes in ISO 8601; orjson writes them
    as ``isoformat`` does, at a fifth of the stdlib encoder's cost)."""
    return orjson.dumps(rows).decode()


def _recordset(columns: Sequence[models.Field]) -> str:
    """``jsonb_to_recordset(%s::jsonb) AS v(c0 type, ...)`` over rows given as objects."""
    types = ", ".join(f"c{i} {c.db_type(connection)}" for i, c in enumerate(columns))
    return f"jsonb_to_recordset(%s::jsonb) AS v({types})"


def _records(rows: Sequence[Sequence]) -> str:
    # jsonb_to_recordset reads objects; short keys keep the document small.
    if not rows:
        return "[]"
    keys = [f"c{i}" for i in range(len(rows[0]))]
    return rows_json([dict(zip(keys, row, strict=True)) for row in rows])


def update_rows(
    model: type[models.Model],
    fields: Sequence[str],
    rows: Sequence[tuple],
    same: dict[str, object] | None = None,
) -> int:
    """Set ``fields`` of ``model``'s rows, and the fields of ``same`` to its values in all of
    them (a timestamp: one parameter); each row is (pk, *values in the order of ``fields``).
    One ``UPDATE ... FROM jsonb_to_recordset(...)`` on PostgreSQL, whatever the number of
    rows (Django's ``bulk_update`` builds a CASE per field and row, quadratic in the batch);
    one ``executemany`` elsewhere (SQLite). Nothing is run for no rows."""
    if not rows:
        return 0
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    pk = model._meta.pk
    columns = _columns(model, fields)
    same = same or {}
    constants = _columns(model, list(same))
    fixed_values = [
        c.get_db_prep_save(v, connection) for c, v in zip(constants, same.values(), strict=True)
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            assignments = ", ".join(
                [f"{qn(c.column)} = %s" for c in constants]
                + [f"{qn(c.column)} = v.c{i}" for i, c in enumerate(columns, start=1)]
            )
            # Identifiers come from the model's metadata; every value is in the parameter.
            sql = (
                f"UPDATE {table} SET {assignments} "  # noqa: S608
                f"FROM {_recordset([pk, *columns])} WHERE {table}.{qn(pk.column)} = v.c0 "
                f"AND {table}.{qn(pk.column)} = ANY(%s::bigint[])"
            )
            # The key list again, as an array: it lets the planner count the rows and take
            # the primary key (it guesses 100 rows for any jsonb_to_recordset).
            keys = array_literal([row[0] for row in rows])
            cursor.execute(sql, [*fixed_values, _records(rows), keys])
        else:
            assignments = ", ".join(f"{qn(c.column)} = %s" for c in [*constants, *columns])
            cursor.executemany(
                f"UPDATE {table} SET {assignments} WHERE {qn(pk.column)} = %s",  # noqa: S608
                [
                    (
                        *fixed_values,
                        *(
                            c.get_db_prep_save(v, connection)
                            for c, v in zip(columns, row[1:], strict=True)
                        ),
                        row[0],
                    )
                    for row in rows
                ],
            )
    return len(rows)


def insert_rows(
    model: type[models.Model],
    fields: Sequence[str],
    rows: Sequence[tuple],
    same: dict[str, object] | None = None,
) -> int:
    """Insert ``rows`` (values in the order of ``fields``, then those of ``same`` for every
    row; every column given, no defaults) into ``model``'s table: one ``INSERT ... SELECT
    FROM jsonb_to_recordset(...)`` on PostgreSQL, one ``executemany`` elsewhere. Nothing is
    run for no rows."""
    if not rows:
        return 0
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    columns = _columns(model, fields)
    same = same or {}
    constants = _columns(model, list(same))
    fixed_values = [
        c.get_db_prep_save(v, connection) for c, v in zip(constants, same.values(), strict=True)
    ]
    names = ", ".join(qn(c.column) for c in [*columns, *constants])
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            selected = ", ".join([f"v.c{i}" for i in range(len(columns))] + ["%s"] * len(same))
            sql = (
                f"INSERT INTO {table} ({names}) SELECT {selected} "  # noqa: S608
                f"FROM {_recordset(columns)}"
            )
            cursor.execute(sql, [*fixed_values, _records(rows)])
        else:
            marks = ", ".join(["%s"] * (len(columns) + len(same)))
            cursor.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({marks})",  # noqa: S608
                [
                    (
                        *(
                            c.get_db_prep_save(v, connection)
                            for c, v in zip(columns, row, strict=True)
                        ),
                        *fixed_values,
                    )
                    for row in rows
                ],
            )
    return len(rows)
