"""The tuning settings shared by the workers that call the chain's parties (the outbound
drains and the enrollment resolver): one reader and one lease rule instead of a copy in each
worker."""

from __future__ import annotations

from django.conf import settings


def setting(name: str, default):
    """``settings.<name>`` converted to the type of ``default`` (which it falls back to)."""
    return type(default)(getattr(settings, name, default))


def concurrency() -> int:
    """How many calls a worker makes at once (``HUB_OUTBOUND_CONCURRENCY``)."""
    return max(1, setting("HUB_OUTBOUND_CONCURRENCY", 16))


def drain_seconds() -> float:
    """The time budget of one worker run before it re-queues itself."""
    return setting("HUB_OUTBOUND_DRAIN_SECONDS", 30.0)


def lease_seconds(batch_size: int) -> float:
    """How long a claimed batch of ``batch_size`` calls stays leased: long enough for every
    call to hit the timeout (they run in parallel, but a batch larger than the pool takes
    several rounds), twice, plus a margin; a crashed worker's batch comes back after it.
    The factor two also covers a drain's queued batch, which waits behind the one in flight
    (a drain holds at most two claimed batches)."""
    rounds = -(-batch_size // concurrency())
    return rounds * setting("HUB_OUTBOUND_TIMEOUT", 10.0) * 2 + 30
