"""Django's PostgreSQL backend, with the connection health check at most once per window and
psycopg's own (C) loader for ``timestamptz``.

With ``CONN_HEALTH_CHECKS`` Django sends ``SELECT 1`` before the first query of every
request on a persistent connection: a round trip, and 0.27 ms of CPU per confirmation, a
tenth of its cost (docs/performance.md, P2). Here a connection that passed a check, or was
opened, within ``DATABASE_HEALTH_CHECK_SECONDS`` is not checked again: an idle connection
(the one a database restart or a dropped link leaves dead) is still checked before use, and
a busy one is checked once per window. A connection that breaks inside the window fails its
request (503, nothing stored, docs/api.md) and, having errored, is closed by Django at the
end of that request; the next request opens a new one.

Django registers a Python subclass of psycopg's pure-Python ``timestamptz`` loader (to set the
result's tzinfo), so every timestamp read costs an ISO parse in Python: 14 % of the apply
worker's time (docs/performance.md, P3). With ``USE_TZ`` and the connection in UTC, which
Django itself sets on connect, psycopg's default loader (C, from psycopg-binary) already
returns datetimes in ``datetime.timezone.utc``: the same values, about six times faster.
"""

from __future__ import annotations

import datetime as dt
import time
from functools import lru_cache

from django.conf import settings
from django.db.backends.postgresql import base
from psycopg import adapt, adapters
from psycopg.pq import Format

TIMESTAMPTZ_OID = adapters.types["timestamptz"].oid


@lru_cache
def _native_timestamptz(template: adapt.AdaptersMap) -> adapt.AdaptersMap:
    """Django's adapters map with psycopg's default ``timestamptz`` loader put back."""
    context = adapt.AdaptersMap(template)
    context.register_loader(TIMESTAMPTZ_OID, adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT))
    return context


class DatabaseWrapper(base.DatabaseWrapper):
    _known_good_at = float("-inf")  # when the connection was opened or last passed a check

    @property
    def _native_timestamptz(self) -> bool:
        # Django sets the connection's TimeZone to UTC exactly when this holds.
        return settings.USE_TZ and self.timezone is dt.UTC

    def get_connection_params(self) -> dict:
        params = super().get_connection_params()
        if self._native_timestamptz:
            params["context"] = _native_timestamptz(params["context"])
        return params

    def create_cursor(self, name=None):
        if not self._native_timestamptz:
            return super().create_cursor(name)
        # Django's own cursors, less its comparison of the loader's ``timezone`` attribute
        # (psycopg's loader has none): the connection's time zone is already the one wanted.
        if not name:
            return self.connection.cursor()
        if self.settings_dict["OPTIONS"].get("server_side_binding") is not True:
            return base.ServerSideCursor(
                self.connection, name=name, scrollable=False, withhold=self.connection.autocommit
            )
        return self.connection.cursor(name, scrollable=False, withhold=self.connection.autocommit)

    def connect(self) -> None:
        super().connect()
        self._known_good_at = time.monotonic()

    def close_if_health_check_failed(self) -> None:
        if (
            self.connection is not None
            and not self.health_check_done
            and time.monotonic() - self._known_good_at < settings.DATABASE_HEALTH_CHECK_SECONDS
        ):
            self.health_check_done = True  # known good a moment ago
            return
        checking = not self.health_check_done
        super().close_if_health_check_failed()
        if checking and self.connection is not None:
            self._known_good_at = time.monotonic()
