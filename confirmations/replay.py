"""The pure fold of an entitlement's confirmations into its state (no database).

Convergence by replay: the state of an entitlement is always the fold of *all* its accepted
confirmations, sorted by ``processedTimestamp`` (ties by ``entitlementReceiveId``, then sender
and kind), starting from the base state. A late, older confirmation therefore re-derives the
state instead of being judged against whatever happened to arrive first.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from entitlements.rules.expiry import expires
from entitlements.rules.transitions import Cause, Decision, Outcome, Subject, decide
from entitlements.statuses import END_DATE_STATUSES, EntitlementStatus, EventCause, UrlStatus


class Event(NamedTuple):
    """One input of the fold: an accepted confirmation or activation, or the expiry.

    A named tuple, not a dataclass: a batch folds thousands and construction was a visible
    share of the worker's profile (docs/performance.md, "P3: the apply worker")."""

    effective_at: dt.datetime
    ref: str  # entitlementReceiveId / initialActivationReferenceId ("" for expiry)
    sender: int  # sender party pk (0 for expiry)
    cause: str  # EventCause value
    pk: int | None = None  # Confirmation pk
    new_status: str | None = None
    proposed_status: str | None = None  # None: no proposal to answer (activation, expiry)
    proposed_end_date: dt.date | None = None
    portal: int | None = None  # portal party pk of a URL confirmation
    new_url_status: str | None = None
    proposed_url_status: str | None = None
    user: dict | None = None  # an activation's UserReference

    @property
    def sort_key(self) -> tuple:
        return (self.effective_at, self.ref, self.sender, self.cause)

    @property
    def as_cause(self) -> Cause:
        return Cause(self.cause, self.pk, self.ref, self.effective_at)


def _sort_key(event: Event) -> tuple:
    return (event.effective_at, event.ref, event.sender, event.cause)


# ``decide`` is pure over a handful of statuses: the same few hundred answers, memoised, instead
# of building the same reason strings again for every event.
_decide = lru_cache(maxsize=4096)(decide)


@dataclass
class Folded:
    """The state an entitlement's events fold into, and each confirmation's outcome."""

    status: str
    status_cause: Cause | None
    end_date: dt.date | None
    urls: dict[int, str]
    url_causes: dict[int, Cause | None]
    user: dict | None
    outcomes: dict[int, Decision] = field(default_factory=dict)


def local_date(moment: dt.datetime, tz: dt.tzinfo) -> dt.date:
    """The calendar date of ``moment`` in the hub's time zone."""
    return moment.astimezone(tz).date()


def fold(base_urls: dict[int, str], events: list[Event], tz: dt.tzinfo) -> Folded:
    """Fold ``events`` (any order) from the base state: status ``created``, URL statuses
    ``base_urls`` (portal pk -> status). Deterministic for a given set of events."""
    state = Folded(
        status=EntitlementStatus.CREATED,
        status_cause=None,
        end_date=None,
        urls=dict(base_urls),
        url_causes=dict.fromkeys(base_urls),
        user=None,
    )
    for event in sorted(events, key=_sort_key):
        decision = _step(state, event, tz)
        if event.pk is not None:
            state.outcomes[event.pk] = decision
    return state


def _step(state: Folded, event: Event, tz: dt.tzinfo) -> Decision:
    """Apply one event to ``state`` in place; return the event's outcome."""
    if event.cause == EventCause.EXPIRY:
        _expire(state, event)
        return Decision(Outcome.APPLIED, "expiry")

    # Answer checks first: a confirmation with one part that answers nothing is rejected
    # as a whole, and neither of its parts is applied.
    parts: list[tuple[Subject, str, str | None, str]] = []
    if event.new_status is not None:
        parts.append((Subject.ENTITLEMENT, state.status, event.proposed_status, event.new_status))
    if event.new_url_status is not None:
        current_url = state.urls.get(event.portal) if event.portal is not None else None
        if current_url is None:
            return Decision(
                Outcome.REJECTED, "the entitlement has no URL status at the confirming portal"
            )
        parts.append((Subject.URL, current_url, event.proposed_url_status, event.new_url_status))
    decisions = [_decide(*part) for part in parts]
    if len(decisions) == 1 and decisions[0].outcome is Outcome.REJECTED:
        return decisions[0]
    rejected = [d for d in decisions if d.outcome is Outcome.REJECTED]
    if rejected:
        return Decision(Outcome.REJECTED, "; ".join(d.reason for d in rejected))

    for (subject, _current, _proposed, new), decision in zip(parts, decisions, strict=True):
        if decision.outcome is not Outcome.APPLIED:
            continue
        if subject is Subject.ENTITLEMENT:
            state.status = new
            state.status_cause = event.as_cause
            if new in END_DATE_STATUSES:
                state.end_date = event.proposed_end_date or local_date(event.effective_at, tz)
        else:
            state.urls[event.portal] = new
            state.url_causes[event.portal] = event.as_cause

    if (
        event.user is not None
        and state.user is None
        and decisions
        and decisions[0].outcome in (Outcome.APPLIED, Outcome.DUPLICATE)
    ):
        state.user = event.user  # the first activation that counts binds the user

    if len(decisions) == 1:
        return decisions[0]  # one part: its outcome and reason are the confirmation's
    outcomes = {d.outcome for d in decisions}
    if Outcome.APPLIED in outcomes:
        outcome = Outcome.APPLIED
    elif Outcome.STALE in outcomes:
        outcome = Outcome.STALE
    else:
        outcome = Outcome.DUPLICATE
    return Decision(outcome, "; ".join(d.reason for d in decisions))


def _expire(state: Folded, event: Event) -> None:
    """The hub's expiry, by the rule the expiry job applies too (``entitlements.rules.expiry``)."""
    cause = event.as_cause
    if expires(Subject.ENTITLEMENT, state.status):
        state.status, state.status_cause = EntitlementStatus.EXPIRED, cause
    for portal, current in state.urls.items():
        if expires(Subject.URL, current):
            state.urls[portal], state.url_causes[portal] = UrlStatus.EXPIRED, cause


def expiry_event(expires_at: dt.datetime) -> Event:
    """The hub's expiry of an entitlement (and its URL statuses) at ``expires_at``: the
    ``entitlements.rules.expiry.expiry_moment`` of its order's expirationDate."""
    return Event(effective_at=expires_at, ref="", sender=0, cause=EventCause.EXPIRY)
