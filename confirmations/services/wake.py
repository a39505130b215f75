"""Waking the confirmation workers after a commit, debounced, never failing the request.

A Redis key marks "a worker will claim again after this moment": a task is queued, or one
is working and has not yet made its last claim. A request sets it (``SET NX``) and enqueues
``apply_pending`` only if it was not set. The working task holds it (``hold``, after every
batch) and clears it (``release``) just before the claim after which it may stop. So a
confirmation committed while the key is set is always seen by a claim, a burst of requests
costs one broker message, not one per request, and a steady stream is taken by the task
already working instead of a new task per burst (docs/performance.md, P5). The key expires
after ``HUB_WAKE_DEBOUNCE_MS`` in case that message or that worker is lost. If Redis or the
broker is down nothing is enqueued; the periodic sweep applies the confirmation later.

The request itself never talks to Redis: ``request_wake`` (after the commit) pokes one waker
thread per process, which runs ``wake_workers``. Each poke is followed by a ``SET NX`` that
starts after it, so the rule above holds; pokes that arrive while the thread is busy share
its next run (a Redis round trip per burst, not per request), and a slow or dead Redis holds
up that thread only, never a 202 (docs/confirmations.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from functools import lru_cache

import redis
from django.conf import settings

from aanspraak.enqueue import enqueue_quietly

log = logging.getLogger(__name__)

WAKE_KEY = "aanspraak:confirmations:wake"
# The waker's rounds start at most this often: under load a process asks Redis some 50 times
# a second instead of once per request; a poke waits at most this long for its round.
MIN_ROUND_SECONDS = 0.02
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
    except redis.RedisError:  # the sweep will pick the rows up
        log.warning("could not wake the confirmation workers; the sweep will", exc_info=True)
        return False
    if enqueue_quietly(APPLY_TASK, [()]):
        return True
    # Not enqueued (the broker is down, logged): the next commit must be able to try again.
    if client is not None:
        with contextlib.suppress(redis.RedisError):
            client.delete(WAKE_KEY)
    return False


def wake_another_worker() -> None:
    """Enqueue one more ``apply_pending`` whatever the key says: a backlog larger than a batch
    is shared by every idle worker process. Never raises (the sweep and the working task
    still drain the backlog)."""
    enqueue_quietly(APPLY_TASK, [()])


def hold_wake() -> None:
    """Called by a working task after each batch: requests need not enqueue another task,
    as this one claims again."""
    client = _redis()
    if client is None:
        return
    try:
        client.set(WAKE_KEY, "1", px=settings.HUB_WAKE_DEBOUNCE_MS)
    except redis.RedisError:
        log.warning("could not hold the wake-up key", exc_info=True)


def clear_wake() -> None:
    """Called by a worker before its last claim: commits from now on wake a worker again."""
    client = _redis()
    if client is None:
        return
    try:
        client.delete(WAKE_KEY)
    except redis.RedisError:
        log.warning("could not clear the wake-up key", exc_info=True)


class _Waker:
    """The per-process thread that runs ``wake_workers`` for the requests' pokes."""

    def __init__(self) -> None:
        self._reset()
        # A forked child (gunicorn --preload, Celery prefork) has no thread: start over.
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._poked = 0  # pokes so far
        self._done = 0  # pokes a finished wake_workers run started after
        self._thread: threading.Thread | None = None

    def poke(self) -> None:
        with self._cond:
            self._poked += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="confirmations-waker", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._done < self._poked)
                upto = self._poked
            started = time.monotonic()
            try:
                wake_workers()
            except Exception:  # never raises, but the thread must outlive anything
                log.exception("the confirmation waker failed")
            with self._cond:
                self._done = upto
                self._cond.notify_all()
            time.sleep(max(0.0, started + MIN_ROUND_SECONDS - time.monotonic()))

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._done >= self._poked, timeout)


_waker = _Waker()


def request_wake() -> None:
    """After a commit: have this process's waker thread run ``wake_workers`` soon. Returns
    at once; never touches Redis itself."""
    _waker.poke()


def wait_for_wakes(timeout: float = 5.0) -> bool:
    """Block until every ``request_wake`` so far has been followed by a finished
    ``wake_workers`` run (tests, graceful shutdown); False on timeout."""
    return _waker.wait_idle(timeout)
