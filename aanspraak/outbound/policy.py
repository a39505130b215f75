"""What an outbound attempt's result means, and when to try again.

Any 2xx is delivered. 5xx, 429, timeouts and connection errors are transient: retried with
exponential backoff and full jitter (``random.uniform(0, min(cap, base * 2**(n-1)))``), never
sooner than a ``Retry-After`` the recipient asked for, until the horizon after the message
was queued has passed. Every other answer (the other 4xx, 3xx) fails for good: sending the
same body again would get the same answer.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import random
from dataclasses import dataclass

from django.conf import settings

from aanspraak.choices import AttemptOutcome


def classify(http_status: int | None) -> AttemptOutcome:
    """The outcome of an answer with ``http_status``; ``None`` means no answer (timeout,
    connection error), which is transient."""
    if http_status is None:
        return AttemptOutcome.RETRY
    if 200 <= http_status < 300:
        return AttemptOutcome.DELIVERED
    if http_status >= 500 or http_status in (408, 429):
        return AttemptOutcome.RETRY
    return AttemptOutcome.FAILED


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    now = now or dt.datetime.now(dt.UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff settings; ``RetryPolicy.from_settings()`` reads HUB_RETRY_* settings."""

    base_seconds: float = 5.0
    max_delay_seconds: float = 3600.0
    horizon_seconds: float = 48 * 3600.0

    @classmethod
    def from_settings(cls) -> RetryPolicy:
        return cls(
            base_seconds=float(getattr(settings, "HUB_RETRY_BASE_SECONDS", cls.base_seconds)),
            max_delay_seconds=float(
                getattr(settings, "HUB_RETRY_MAX_DELAY_SECONDS", cls.max_delay_seconds)
            ),
            horizon_seconds=float(
                getattr(settings, "HUB_RETRY_HORIZON_SECONDS", cls.horizon_seconds)
            ),
        )

    def delay(
        self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based): full jitter over
        the exponential ceiling, but at least what ``Retry-After`` asked for."""
        ceiling = min(self.max_delay_seconds, self.base_seconds * 2 ** max(0, attempt - 1))
        jittered = (rng or random).uniform(0, ceiling)
        if retry_after is not None:
            # The recipient said when it can take more; honour it (past the horizon the
            # message then fails for good).
            return max(jittered, retry_after)
        return jittered

    def next_attempt_at(
        self,
        queued_at: dt.datetime,
        attempt: int,
        now: dt.datetime,
        retry_after: float | None = None,
    ) -> dt.datetime | None:
        """When to try again after attempt ``attempt``, or None when that would be past the
        horizon after ``queued_at`` (the message then fails for good)."""
        when = now + dt.timedelta(seconds=self.delay(attempt, retry_after))
        if when > queued_at + dt.timedelta(seconds=self.horizon_seconds):
            return None
        return when
