"""At most one drain per recipient at a time.

Without it, every sweep and every re-queue of a slow party's drain adds another drain of the
same party, until that party occupies every worker process. A drain therefore takes a
per-recipient lock for as long as it runs, without waiting: a drain that finds the lock
taken returns at once (the drain that holds it sends the messages).

- PostgreSQL: a session-level advisory lock, ``pg_try_advisory_lock(namespace, recipient)``.
  The server releases it when the connection closes, so a killed worker never leaves it
  held. (It needs a real session: behind a transaction-pooling PgBouncer, use session
  pooling for the workers.)
- Other databases (SQLite, the embedded default, which always runs on one machine): an
  exclusive ``flock`` on a file per recipient under ``HUB_DATA_DIR/locks``, released by the
  kernel when the process dies.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock (one worker process suffices)
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

# The first key of the two-key advisory lock: "drain" locks never collide with other users
# of advisory locks in the same database.
LOCK_NAMESPACE = 0x44524E31  # "DRN1"


def _key(recipient_id: int) -> int:
    return recipient_id % 2**31  # the second key is a 32-bit int


@contextmanager
def recipient_lock(recipient_id: int) -> Iterator[bool]:
    """Try to take the drain lock of ``recipient_id`` for the ``with`` block; yields whether
    it was taken (never waits). Released when the block ends."""
    if connection.vendor == "postgresql":
        with _advisory_lock(recipient_id) as held:
            yield held
    else:
        with _file_lock(recipient_id) as held:
            yield held


@contextmanager
def _advisory_lock(recipient_id: int) -> Iterator[bool]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_NAMESPACE, _key(recipient_id)])
        held = bool(cursor.fetchone()[0])
    try:
        yield held
    finally:
        if held:
            try:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_advisory_unlock(%s, %s)", [LOCK_NAMESPACE, _key(recipient_id)]
                    )
            except DatabaseError:
                # The connection or its transaction broke: closing the session frees it.
                log.warning("could not release the drain lock of %s", recipient_id, exc_info=True)
                connection.close_if_unusable_or_obsolete()


@contextmanager
def _file_lock(recipient_id: int) -> Iterator[bool]:
    if fcntl is None:
        yield True
        return
    folder = Path(settings.HUB_DATA_DIR) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"drain-{recipient_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
