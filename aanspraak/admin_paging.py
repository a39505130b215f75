"""Admin changelists over tables of millions of rows: a paginator that never counts a whole
table (docs/support-desk.md, "Search").

Django's paginator runs ``COUNT(*)`` of the listed queryset on every page; on a national
school start (millions of entitlements, messages, confirmations) that alone takes seconds.
This one counts at most ``EXACT_UP_TO + 1`` rows (``SELECT COUNT(*) FROM (… LIMIT n)``), so
a small result (a search, a delivery order's entitlements) is counted exactly, and above
that takes PostgreSQL's estimate: the table's ``pg_class.reltuples`` when unfiltered, the
planner's row estimate (``EXPLAIN``) when filtered.
"""

from __future__ import annotations

import json

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

# Counted exactly up to this many rows; bounded work per page whatever the table's size.
EXACT_UP_TO = 10_000


def table_estimate(queryset) -> int | None:
    """PostgreSQL's estimate of the rows of the queryset's table (``reltuples``, kept by
    autovacuum's ANALYZE); None when never analysed or not on PostgreSQL."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
            [queryset.model._meta.db_table],
        )
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] >= 0 else None


def plan_estimate(queryset) -> int | None:
    """The planner's estimate of the rows the (filtered) queryset returns; None when not on
    PostgreSQL."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    plan = queryset.order_by().explain(format="json")
    return int(json.loads(plan)[0]["Plan"]["Plan Rows"])


def is_filtered(queryset) -> bool:
    """Whether the queryset has a WHERE clause (a filter or a search)."""
    return bool(queryset.query.where)


class EstimatedCountPaginator(Paginator):
    """A paginator that counts exactly up to ``EXACT_UP_TO`` rows and estimates above."""

    exact_up_to = EXACT_UP_TO

    @cached_property
    def count(self) -> int:
        """The number of rows: exact when at most ``exact_up_to``, else an estimate that is
        never below ``exact_up_to + 1``."""
        queryset = self.object_list
        if not hasattr(queryset, "query"):
            return super().count
        if not is_filtered(queryset):
            estimate = table_estimate(queryset)
            if estimate is not None and estimate > self.exact_up_to:
                return estimate
        capped = queryset.order_by()[: self.exact_up_to + 1].count()
        if capped <= self.exact_up_to:
            return capped
        estimate = plan_estimate(queryset) if is_filtered(queryset) else table_estimate(queryset)
        return max(estimate or 0, capped)

    @property
    def is_estimate(self) -> bool:
        """Whether ``count`` is PostgreSQL's estimate rather than a count."""
        return self.count > self.exact_up_to


class BigTableAdminMixin:
    """For the changelist of a table that grows with the country: estimated counts, and no
    second count of the whole table for "N total" (``show_full_result_count``)."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
