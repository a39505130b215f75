"""The legal status transitions of entitlements and URL statuses: one table, as data.

Two relations decide every confirmation (docs/confirmations.md, "The rules"):

* ``ANSWERS``: which new statuses answer a status the hub *proposed* in an Entitlement
  request (a registry answers a proposed ``created`` with ``created``, ``entitled`` or
  ``licensed``; a cancel proposal only with ``cancelled``).
* ``MOVES``: which statuses may follow the *current* one. Terminal statuses have no moves
  (``TERMINAL`` is derived from it, as is ``sources``: what a status may follow).

``decide`` combines them into the outcome of one confirmation. The hub's own events (expiry,
initial activations) have no proposal to answer and pass ``proposed=None``. Every status
change is written by ``entitlements.status.write_changes``, which refuses a move that
``MOVES`` does not hold.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from entitlements.statuses import EntitlementStatus as E
from entitlements.statuses import UrlStatus as U


class Subject(StrEnum):
    """What a status belongs to: the entitlement itself or its URL at a portal."""

    ENTITLEMENT = "entitlement"
    URL = "url"


class Outcome(StrEnum):
    """What one confirmation (or hub event) came to; the decided values of a stored
    confirmation's state (docs/confirmations.md, "Outcomes")."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    REJECTED = "rejected"


ANSWERS: dict[Subject, dict[str, frozenset[str]]] = {
    Subject.ENTITLEMENT: {
        E.CREATED: frozenset({E.CREATED, E.ENTITLED, E.LICENSED}),
        E.CANCELLED: frozenset({E.CANCELLED}),
        E.BLOCKED: frozenset({E.BLOCKED}),
    },
    Subject.URL: {
        U.INITIALIZED: frozenset({U.INITIALIZED, U.PROCESSED, U.EXPIRED}),
        U.CANCELLED: frozenset({U.CANCELLED}),
        U.BLOCKED: frozenset({U.BLOCKED}),
    },
}

MOVES: dict[Subject, dict[str, frozenset[str]]] = {
    Subject.ENTITLEMENT: {
        E.CREATED: frozenset({E.ENTITLED, E.LICENSED, E.CANCELLED, E.BLOCKED, E.EXPIRED}),
        E.ENTITLED: frozenset({E.LICENSED, E.CANCELLED, E.BLOCKED, E.EXPIRED}),
        # An activated licence can no longer be cancelled, only blocked (or expire).
        E.LICENSED: frozenset({E.BLOCKED, E.EXPIRED}),
        E.CANCELLED: frozenset(),
        E.BLOCKED: frozenset(),
        E.EXPIRED: frozenset(),
    },
    Subject.URL: {
        # A portal's confirmation proves the request reached it, even before the hub
        # recorded the delivery: every outcome may follow ``uninitialized``.
        U.UNINITIALIZED: frozenset({U.INITIALIZED, U.PROCESSED, U.CANCELLED, U.BLOCKED, U.EXPIRED}),
        U.INITIALIZED: frozenset({U.PROCESSED, U.CANCELLED, U.BLOCKED, U.EXPIRED}),
        U.PROCESSED: frozenset({U.CANCELLED, U.BLOCKED, U.EXPIRED}),
        U.CANCELLED: frozenset(),
        U.BLOCKED: frozenset(),
        U.EXPIRED: frozenset(),
    },
}


# Derived from MOVES, never listed again: the statuses with no way out, and for each status
# the ones it may follow (what the hub's own moves filter on before they write).
TERMINAL: dict[Subject, frozenset[str]] = {
    subject: frozenset(status for status, moves in table.items() if not moves)
    for subject, table in MOVES.items()
}
SOURCES: dict[Subject, dict[str, frozenset[str]]] = {
    subject: {
        new: frozenset(status for status, moves in table.items() if new in moves) for new in table
    }
    for subject, table in MOVES.items()
}


@dataclass(frozen=True)
class Cause:
    """What set a status: a confirmation, an activation, the hub's expiry (an EventCause)."""

    cause: str
    pk: int | None
    ref: str
    effective_at: dt.datetime


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str


def answers(subject: Subject, proposed: str, new: str) -> bool:
    """Whether ``new`` is an answer to the hub's proposal ``proposed``."""
    return new in ANSWERS[subject].get(proposed, frozenset())


def is_legal_move(subject: Subject, current: str, new: str) -> bool:
    """Whether ``new`` may follow ``current``."""
    return new in MOVES[subject].get(current, frozenset())


def sources(subject: Subject, new: str) -> frozenset[str]:
    """The statuses ``new`` may follow (a legal move from each of them to ``new``)."""
    return SOURCES[subject].get(new, frozenset())


def decide(subject: Subject, current: str, proposed: str | None, new: str) -> Decision:
    """The outcome of moving a status from ``current`` to ``new`` in answer to ``proposed``.

    ``rejected``: ``new`` does not answer the proposal; ``duplicate``: the status already is
    ``new``; ``applied``: a legal move; ``stale``: not a legal move from ``current`` (the
    status has moved on). ``proposed=None`` skips the answer check (the hub's own events).
    """
    label = "status" if subject is Subject.ENTITLEMENT else "URL status"
    if proposed is not None and not answers(subject, proposed, new):
        allowed = ", ".join(sorted(ANSWERS[subject].get(proposed, ()))) or "nothing"
        return Decision(
            Outcome.REJECTED,
            f"{label} {new} does not answer the proposed {label} {proposed} "
            f"(allowed answers: {allowed})",
        )
    if new == current:
        return Decision(Outcome.DUPLICATE, f"the {label} already was {current}")
    if is_legal_move(subject, current, new):
        return Decision(Outcome.APPLIED, f"{label} {current} → {new}")
    return Decision(Outcome.STALE, f"{label} {new} cannot follow the current {label} {current}")
