"""Django's PostgreSQL backend, with the connection health check at most once per window.

With ``CONN_HEALTH_CHECKS`` Django sends ``SELECT 1`` before the first query of every
request on a persistent connection: a round trip, and 0.27 ms of CPU per confirmation, a
tenth of its cost (docs/performance.md, P2). Here a connection that passed a check, or was
opened, within ``DATABASE_HEALTH_CHECK_SECONDS`` is not checked again: an idle connection
(the one a database restart or a dropped link leaves dead) is still checked before use, and
a busy one is checked once per window. A connection that breaks inside the window fails its
request (503, nothing stored, docs/api.md) and, having errored, is closed by Django at the
end of that request; the next request opens a new one.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    _known_good_at = float("-inf")  # when the connection was opened or last passed a check

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
