"""The expiry rule, shared by the periodic expiry job and the confirmation worker's replay.

Both must reach the same state whichever runs first (docs/delivery.md, "Expiry"), so both
read the rule from here:

* an entitlement expires at ``expiry_moment(expirationDate)`` (the end of that day, hub time
  zone), and that moment, not the moment a job happens to run, is its ``status_changed_at``;
* the entitlement's status becomes ``expired`` when ``expired`` may follow it (created,
  entitled, licensed): cancelled and blocked stay as they are;
* every URL status from which ``expired`` may follow becomes ``expired`` as well, *whatever*
  the entitlement's status: a cancelled or blocked entitlement whose portal never confirmed
  the end has no live link past its expiration date either.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.conf import settings

from entitlements.statuses import EntitlementStatus, UrlStatus

from .transitions import MOVES, Subject, is_legal_move

EXPIRING_STATUSES: frozenset[str] = frozenset(
    s
    for s in MOVES[Subject.ENTITLEMENT]
    if is_legal_move(Subject.ENTITLEMENT, s, EntitlementStatus.EXPIRED)
)
EXPIRING_URL_STATUSES: frozenset[str] = frozenset(
    s for s in MOVES[Subject.URL] if is_legal_move(Subject.URL, s, UrlStatus.EXPIRED)
)


def hub_tz() -> dt.tzinfo:
    """The hub's time zone (``settings.TIME_ZONE``), in which expiration dates end."""
    return ZoneInfo(settings.TIME_ZONE)


def expiry_moment(expiration_date: dt.date, tz: dt.tzinfo | None = None) -> dt.datetime:
    """The moment an entitlement expires: the end of its ``expirationDate`` (hub time)."""
    return dt.datetime.combine(
        expiration_date + dt.timedelta(days=1), dt.time(), tzinfo=tz or hub_tz()
    )


def is_due(expiration_date: dt.date | None, now: dt.datetime, tz: dt.tzinfo | None = None) -> bool:
    """Whether an order valid until ``expiration_date`` has expired at ``now``."""
    return expiration_date is not None and expiry_moment(expiration_date, tz) <= now


def expires(subject: Subject, status: str) -> bool:
    """Whether ``status`` (of an entitlement or a URL) becomes ``expired`` at expiry."""
    return status in (
        EXPIRING_STATUSES if subject is Subject.ENTITLEMENT else EXPIRING_URL_STATUSES
    )
