"""Scale benchmark: the hub's hot and periodic queries on a national school start.

Builds, in a database of its own, the shape of a national school start by set-based SQL
(``INSERT ... SELECT`` over ``generate_series``, then ``VACUUM (ANALYZE)``): at
``--factor 1.0`` about 2 M entitlements in 2,000 orders (mostly 100-2,000 entitlements, a
few of 50,000), 3.1 M URL statuses, 5.1 M outbound messages, 2.8 M confirmations and 4.2 M
status events. Then it calls the hub's own selectors and services (the GET of a 50,000
order, the expiry sweep, the dispatch and apply claims, the sweeps, receiving and looking up
confirmations, intake, usage reconciliation) under ``connection.execute_wrapper``: every
statement they run is explained with ``EXPLAIN (ANALYZE, BUFFERS)`` inside a savepoint
(rolled back), then run for real; each call is rolled back at the end, so every query sees
the same database. It prints per statement the plan's top nodes, any Seq Scan of a big
table, rows, time, JIT time, and a verdict: proportional (it reads in proportion to the rows
it returns or changes) or not.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/aanspraak \\
        python -m benchmarks.scale --dsn-db aanspraak_scale_bench --factor 0.05

``--keep`` keeps the database (drop it yourself), ``--write-docs`` writes the table into
docs/performance.md between its markers, ``--json FILE`` writes the figures as JSON (the
test reads them). The database is dropped on every exit path otherwise.

The parts: ``database`` (the database of its own), ``build`` (the national shape),
``queries`` (the hub's queries and the GET's floor), ``explain`` (explaining and measuring
them), ``report`` (the table of docs/performance.md) and ``cli`` (the command line).
"""

from __future__ import annotations

from .cli import main

__all__ = ["main"]
