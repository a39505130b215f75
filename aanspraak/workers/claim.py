"""Claiming due rows with a lease, and finding which of them a worker still holds."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import models, transaction


@dataclass(frozen=True)
class Claim:
    """Rows one worker claimed, and its lease: the ``next_attempt_at`` it gave them. A row
    whose ``next_attempt_at`` no longer equals the lease has been taken over (the lease ran
    out and another worker claimed it) or queued again: its result must not be written."""

    ids: list[int]
    lease: dt.datetime | None = None

    def __len__(self) -> int:
        return len(self.ids)


def claim_leased(
    scans: Sequence[models.QuerySet], limit: int, lease: dt.datetime, lease_field: str
) -> Claim:
    """Claim up to ``limit`` rows for this worker: lock them from ``scans`` in turn (each a
    queryset of due rows in the order to take them; rows other workers hold are skipped)
    until ``limit`` are had, then set their ``lease_field`` to ``lease`` (one UPDATE), in one
    transaction. Several scans let each one be a range scan of an index that stops at
    ``limit`` (see ``entitlements.outbox.claim``)."""
    ids: list[int] = []
    with transaction.atomic():
        for scan in scans:
            if len(ids) >= limit:
                break
            ids += scan.select_for_update(skip_locked=True).values_list("id", flat=True)[
                : limit - len(ids)
            ]
        if ids:
            scans[0].model.objects.filter(id__in=ids).update(**{lease_field: lease})
    return Claim(ids, lease)


@dataclass
class Held:
    """The claimed rows as locked again: ``rows`` (pk → the requested fields) this worker
    still holds; ``lost`` the pks of rows that are there but no longer its own. Rows that
    are gone (deleted meanwhile) are in neither."""

    rows: dict[int, tuple] = field(default_factory=dict)
    lost: list[int] = field(default_factory=list)


def lock_held(
    model: type[models.Model],
    ids: Sequence[int],
    lease: dt.datetime | None,
    fields: Sequence[str] = (),
    *,
    pending: str = "pending",
    state_field: str = "state",
    lease_field: str = "next_attempt_at",
) -> Held:
    """Lock the rows ``ids`` (``SELECT ... FOR NO KEY UPDATE``, in id order: the lock order
    of every worker) and sort them into those still held with ``lease`` (``state_field`` is
    ``pending``, ``lease_field`` equals ``lease``) and those lost. Call it inside the
    transaction that records the results.

    NO KEY: the recording changes no key, and a plain FOR UPDATE would also block the
    ``FOR KEY SHARE`` of another transaction's foreign-key check on these rows (a confirmation
    applied and linked to its request at that moment): with the URL statuses the recording
    locks next, the two would deadlock (docs/architecture.md, "Workers")."""
    held = Held()
    for pk, state, leased, *values in (
        model.objects.select_for_update(no_key=True)
        .filter(id__in=list(ids))
        .order_by("id")
        .values_list("id", state_field, lease_field, *fields)
    ):
        if state == pending and leased == lease:
            held.rows[pk] = tuple(values)
        else:
            held.lost.append(pk)
    return held
