"""The one RFC 3339 rendering of the hub's timestamps (outbound requests, confirmations and
the read API must show the same moment the same way)."""

from __future__ import annotations

import datetime as dt


def rfc3339(moment: dt.datetime) -> str:
    """``moment`` in UTC as RFC 3339 with ``Z``, in whole seconds (``2026-08-01T10:00:00Z``):
    the precision the read API has always served; sub-seconds are cut, not rounded."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
