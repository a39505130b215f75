"""Per-client rate limits, shared by every web process (docs/api.md, "Rate limits").

A client's limit is its registry file's ``rateLimit`` (``"600/min"``, ``"20/s"``,
``"10000/hour"``), else ``HUB_RATE_LIMIT``; none: no limit. Each limit is a *fixed window*
counter: the period's requests are counted from the start of the period (a minute from the
full minute), and a request over the count waits for the next period.

The count lives in Django's cache (the hub's Redis; files on the embedded default), so every
web process shares it. To keep it off the hot path (docs/performance.md, P2) a process adds its
requests to the shared count in steps: every request when the limit is tight (a step of 1 up to
100 per period), else every 1 % of the limit, and at least every ``SYNC_SECONDS`` (0.25 s); between
steps it decides from the shared count it last read plus its own. A limit can so be exceeded by
at most one step per web process (1 %), never by more. A cache that cannot be reached lets
requests through (logged): a limit protects the hub, it must not take it down.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from aanspraak.rates import Rate, parse_rate

log = logging.getLogger(__name__)

# How long a process may decide from the shared count it last read (a step every 50 ms was
# a tenth of a confirmation's CPU under load, docs/performance.md, P2).
SYNC_SECONDS = 0.25


@dataclass(slots=True)
class _Window:
    index: int  # which period (time // period)
    shared: int = 0  # the shared count as last read
    pending: int = 0  # this process's requests not yet added to it
    synced_at: float = 0.0


_windows: dict[tuple[int, str], _Window] = {}
_lock = threading.Lock()


def reset() -> None:
    """Forget this process's counts (tests)."""
    with _lock:
        _windows.clear()


def _step(rate: Rate) -> int:
    return 1 if rate.count <= 100 else rate.count // 100


def _add_to_shared(client_pk: int, rate: Rate, index: int, requests: int) -> int | None:
    """Add ``requests`` to the shared count of the window; the new count (None: no cache).

    On Redis one pipelined round trip (INCRBY and EXPIRE); elsewhere Django's cache API."""
    raw_key = f"rate:{client_pk}:{rate.text}:{index}"
    # The backend itself: ``django.core.cache.cache`` is a proxy, never a RedisCache.
    cache = caches["default"]
    try:
        if isinstance(cache, RedisCache):
            pipe = cache._cache.get_client(write=True).pipeline(transaction=False)
            key = cache.make_and_validate_key(raw_key)
            pipe.incrby(key, requests)
            pipe.expire(key, rate.period * 2)
            return int(pipe.execute()[0])
        cache.add(raw_key, 0, timeout=rate.period * 2)
        return cache.incr(raw_key, requests) if requests else cache.get(raw_key, 0)
    except Exception:
        log.warning("rate-limit counts unavailable; not limiting", exc_info=True)
        return None


def hit(client_pk: int, rate: Rate, now: float | None = None) -> int:
    """Count one request of the client against ``rate``: 0 if it may go ahead, else the
    whole seconds until the next period. A refused request is not counted, except the one
    whose step found the shared count over the limit (it counts in that period only)."""
    now = time.time() if now is None else now
    index = int(now // rate.period)
    wait = max(1, math.ceil((index + 1) * rate.period - now))
    with _lock:
        window = _windows.get((client_pk, rate.text))
        if window is None or window.index != index:
            window = _windows[client_pk, rate.text] = _Window(index)
        # Over the limit as far as this process knows: refused, unless the shared count is
        # stale and none of ours is in it (then one more step reads it).
        if window.shared + window.pending >= rate.count and (
            now - window.synced_at < SYNC_SECONDS or window.pending
        ):
            return wait
        window.pending += 1
        due = window.pending >= _step(rate) or now - window.synced_at >= SYNC_SECONDS
        if not due:
            return 0
        requests, window.pending = window.pending, 0
    shared = _add_to_shared(client_pk, rate, index, requests)
    with _lock:
        if shared is None:
            return 0
        window.shared, window.synced_at = shared, now
    return wait if shared > rate.count else 0


def limit_of(client_rate: str | None) -> Rate | None:
    """The rate that applies to a client: its own, else ``HUB_RATE_LIMIT``, else None."""
    text = client_rate or settings.HUB_RATE_LIMIT
    return parse_rate(text) if text else None
