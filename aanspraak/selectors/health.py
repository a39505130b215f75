"""Readiness (``GET /readyz``, docs/operations.md, "Health"): can this process serve, that is
reach its database and its broker, and does the database have every migration this code
knows?

Each check is bounded by ``HUB_HEALTH_TIMEOUT`` seconds: the database is probed on a
connection of its own (not a request's pooled one) with a connect timeout and a statement
timeout, Redis with socket timeouts, and the checks run in a small thread pool whose answers
are awaited no longer than that (a check still running then counts as failed, and ends on
its own timeouts). A failed check's value says what failed in words of the hub's own: never
an exception's message, which may name hosts (and, for some drivers, credentials).
"""

from __future__ import annotations

import copy
import logging
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS
from django.db.migrations.loader import MigrationLoader
from django.db.utils import load_backend

log = logging.getLogger(__name__)

OK = "ok"
CHECKS = ("database", "broker", "migrations")

# Few threads: probes come every few seconds, and a hung check ends on its own timeout.
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readiness")
# Once the database holds every migration this code knows, it keeps holding them: the check
# is not repeated for the life of the process.
_migrations_ok = threading.Event()


def _failed(check: str, what: str, exc: BaseException) -> str:
    # The exception goes to the log (where hosts may appear; credentials are redacted,
    # aanspraak/logs.py); the answer names only its class.
    log.warning("readiness: %s check failed: %s: %s", check, type(exc).__name__, exc)
    return f"{what} ({type(exc).__name__})"


def _probe_wrapper(timeout: float):
    """A new connection wrapper for the default database with the timeouts set."""
    # The configured database as Django completed it (the same dictionaries back
    # ``connections``); a copy, so the probe's timeouts stay its own.
    settings_dict = copy.deepcopy(settings.DATABASES[DEFAULT_DB_ALIAS])
    backend = load_backend(settings_dict["ENGINE"])
    wrapper = backend.DatabaseWrapper(settings_dict, DEFAULT_DB_ALIAS)
    if wrapper.vendor == "postgresql":
        options = settings_dict.setdefault("OPTIONS", {})
        # libpq takes whole seconds and treats less than 2 as 2.
        options["connect_timeout"] = max(2, math.ceil(timeout))
        statement = f"-c statement_timeout={max(1, int(timeout * 1000))}"
        options["options"] = f"{options.get('options', '')} {statement}".strip()
    return wrapper


@lru_cache(maxsize=1)
def _known_migrations() -> tuple[frozenset, dict]:
    """The migrations of this code (read from disk once: they do not change while the
    process runs) and the squashed ones with the migrations each replaces."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return frozenset(loader.graph.nodes), dict(loader.replacements)


def _unapplied(wrapper) -> int:
    """How many of this code's migrations the database lacks: read on the probe's own
    connection (Django's MigrationRecorder would query the thread's default connection)."""
    known, replacements = _known_migrations()
    with wrapper.cursor() as cursor:
        if "django_migrations" not in wrapper.introspection.table_names(cursor):
            return len(known)
        cursor.execute("SELECT app, name FROM django_migrations")
        applied = set(map(tuple, cursor.fetchall()))
    return sum(
        1
        for key in known
        if key not in applied
        and not (key in replacements and set(replacements[key].replaces) <= applied)
    )


def _database_and_migrations(timeout: float) -> dict[str, str]:
    wrapper = _probe_wrapper(timeout)
    try:
        try:
            with wrapper.cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception as exc:
            return {
                "database": _failed("database", "unavailable: cannot connect or query", exc),
                "migrations": "unknown: the database is unavailable",
            }
        if _migrations_ok.is_set():
            return {"database": OK, "migrations": OK}
        try:
            unapplied = _unapplied(wrapper)
        except Exception as exc:
            return {"database": OK, "migrations": _failed("migrations", "unknown", exc)}
        if unapplied:
            return {"database": OK, "migrations": f"pending: {unapplied} unapplied migrations"}
        _migrations_ok.set()
        return {"database": OK, "migrations": OK}
    finally:
        wrapper.close()


def _broker(timeout: float) -> str:
    url = settings.CELERY_BROKER_URL
    if url.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            client.ping()
        except Exception as exc:
            return _failed("broker", "unavailable: cannot reach Redis", exc)
        finally:
            client.close()
        return OK
    if url == "filesystem://":
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        if folder.is_dir() and os.access(folder, os.W_OK):
            return OK
        return "unavailable: the broker folder is missing or not writable"
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:
        return _failed("broker", "unavailable: cannot connect", exc)
    return OK


def readiness(timeout: float | None = None) -> dict[str, str]:
    """Every check's value (``ok``, or what failed), each within ``timeout`` seconds (default
    ``HUB_HEALTH_TIMEOUT``); the checks run side by side."""
    timeout = settings.HUB_HEALTH_TIMEOUT if timeout is None else timeout
    database = _pool.submit(_database_and_migrations, timeout)
    broker = _pool.submit(_broker, timeout)
    # A little slack over the checks' own timeouts, which end them first when they can.
    futures_wait([database, broker], timeout=timeout + 0.5)
    if database.done():
        results = database.result()
    else:
        results = {
            "database": f"unavailable: no answer within {timeout:g} s",
            "migrations": "unknown: the database is unavailable",
        }
    if broker.done():
        results["broker"] = broker.result()
    else:
        results["broker"] = f"unavailable: no answer within {timeout:g} s"
    return {check: results[check] for check in CHECKS}


def is_ready(checks: dict[str, str]) -> bool:
    """Whether every check passed."""
    return all(value == OK for value in checks.values())
