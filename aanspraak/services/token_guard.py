"""Failed client authentications at the token endpoint, counted per client id and address,
so that nobody can guess a client's secret (docs/api.md#authentication).

A fixed window of one calendar minute: after ``HUB_TOKEN_FAILURES_PER_MINUTE`` failures for one
client id from one address within the minute, every further attempt of that pair, even with
the right secret, is refused until the minute is over. The counts live in Django's cache, which
is Redis when the hub runs on Redis (shared by every web process) and files under
``HUB_DATA_DIR`` on the embedded default. A cache that cannot be reached lets the request
through (logged): the secret check itself still stands.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from django.conf import settings
from django.core.cache import cache

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60


def _key(client_id: str, address: str, window: int) -> str:
    # Hashed: client ids come from the request and cache keys must stay short and printable.
    digest = hashlib.sha256(f"{client_id}\0{address}".encode()).hexdigest()[:32]
    return f"token-failures:{window}:{digest}"


def _window(now: float) -> int:
    return int(now // WINDOW_SECONDS)


def blocked_for(client_id: str, address: str, now: float | None = None) -> int:
    """Whole seconds until ``client_id`` may try again from ``address`` (0: it may now)."""
    limit = settings.HUB_TOKEN_FAILURES_PER_MINUTE
    if limit <= 0:
        return 0
    now = time.time() if now is None else now
    try:
        failures = cache.get(_key(client_id, address, _window(now)), 0)
    except Exception:  # the cache is down: fail open, the secret check still runs
        log.warning("token failure counts unavailable; not limiting", exc_info=True)
        return 0
    if failures < limit:
        return 0
    return max(1, math.ceil((_window(now) + 1) * WINDOW_SECONDS - now))


def record_failure(client_id: str, address: str, now: float | None = None) -> int:
    """Count one failed authentication of ``client_id`` from ``address``; the count in the
    current minute (0 when the cache cannot be reached)."""
    now = time.time() if now is None else now
    key = _key(client_id, address, _window(now))
    try:
        cache.add(key, 0, timeout=WINDOW_SECONDS * 2)
        return cache.incr(key)
    except Exception:
        log.warning("token failure not counted; the cache is unavailable", exc_info=True)
        return 0
