"""Waking the confirmation workers after a commit, debounced, never failing the request.

A Redis key marks "a wake-up is queued and no worker has started on it yet". A request sets
it (``SET NX``) and enqueues ``apply_pending`` only if it was not set; the task clears it
before it claims anything. So a confirmation committed while the key is set is always seen
by the queued task, and a burst of requests costs one broker message, not one per request.
The key expires after ``HUB_WAKE_DEBOUNCE_MS`` in case that message is lost. If Redis or
the broker is down nothing is enqueued; the periodic sweep applies the confirmation later.
"""

from __future__ import annotations

import contextlib
import logging
from functools import lru_cache

import redis
from celery import current_app
from django.conf import settings

log = logging.getLogger(__name__)

WAKE_KEY = "aanspraak:confirmations:wake"
APPLY_TASK = "confirmations.tasks.apply_pending"


@lru_cache(maxsize=4)
def _redis_for(url: str) -> redis.Redis:
    # Short timeouts: a Redis that is down must not hold up a 202.
    return redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)


def _redis() -> redis.Redis | None:
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return None  # embedded default (filesystem broker): no debounce
    return _redis_for(url)


def wake_workers() -> bool:
    """Enqueue ``apply_pending`` unless a wake-up is already queued. Never raises; True when
    a task was enqueued."""
    client = _redis()
    try:
        if client is not None and not client.set(
            WAKE_KEY, "1", nx=True, px=settings.HUB_WAKE_DEBOUNCE_MS
        ):
            return False
        current_app.send_task(APPLY_TASK, retry=False)
        return True
    except Exception:  # any broker or Redis failure: the sweep will pick the rows up
        log.warning("could not wake the confirmation workers; the sweep will", exc_info=True)
        if client is not None:
            with contextlib.suppress(redis.RedisError):
                client.delete(WAKE_KEY)
        return False


def clear_wake() -> None:
    """Called by a worker before it claims confirmations: later commits wake it again."""
    client = _redis()
    if client is None:
        return
    try:
        client.delete(WAKE_KEY)
    except redis.RedisError:
        log.warning("could not clear the wake-up key", exc_info=True)
