"""Set-based writes of many rows in one statement: ``update_rows`` and ``insert_rows``.

On PostgreSQL the rows travel as one JSON parameter, expanded by ``jsonb_to_recordset``: one
string for psycopg to quote instead of a value per row and column (Django binds parameters
client-side, and quoting thousands of them per batch was a fifth of the confirmation worker's
time, docs/performance.md, "P3: the apply worker"). Elsewhere (SQLite) one ``executemany``.
Used by the one writer of status changes (``entitlements.status``) and the confirmation
worker's outcomes.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from django.db import connection, models

from aanspraak.lookups import array_literal


def _columns(model: type[models.Model], names: Sequence[str]) -> list[models.Field]:
    return [model._meta.get_field(name) for name in names]


def rows_json(rows: Sequence[Sequence]) -> str:
    """``rows`` as a JSON array of arrays (dates and datetimes in ISO 8601; orjson writes them
    as ``isoformat`` does, at a fifth of the stdlib encoder's cost)."""
    return orjson.dumps(rows).decode()


def _recordset(columns: Sequence[models.Field]) -> str:
    """``jsonb_to_recordset(%s::jsonb) AS v(c0 type, ...)`` over rows given as objects."""
    types = ", ".join(f"c{i} {c.db_type(connection)}" for i, c in enumerate(columns))
    return f"jsonb_to_recordset(%s::jsonb) AS v({types})"


def _records(rows: Sequence[Sequence]) -> str:
    # jsonb_to_recordset reads objects; short keys keep the document small.
    if not rows:
        return "[]"
    keys = [f"c{i}" for i in range(len(rows[0]))]
    return rows_json([dict(zip(keys, row, strict=True)) for row in rows])


def update_rows(
    model: type[models.Model],
    fields: Sequence[str],
    rows: Sequence[tuple],
    same: dict[str, object] | None = None,
) -> int:
    """Set ``fields`` of ``model``'s rows, and the fields of ``same`` to its values in all of
    them (a timestamp: one parameter); each row is (pk, *values in the order of ``fields``).
    One ``UPDATE ... FROM jsonb_to_recordset(...)`` on PostgreSQL, whatever the number of
    rows (Django's ``bulk_update`` builds a CASE per field and row, quadratic in the batch);
    one ``executemany`` elsewhere (SQLite). Nothing is run for no rows."""
    if not rows:
        return 0
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    pk = model._meta.pk
    columns = _columns(model, fields)
    same = same or {}
    constants = _columns(model, list(same))
    fixed_values = [
        c.get_db_prep_save(v, connection) for c, v in zip(constants, same.values(), strict=True)
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            assignments = ", ".join(
                [f"{qn(c.column)} = %s" for c in constants]
                + [f"{qn(c.column)} = v.c{i}" for i, c in enumerate(columns, start=1)]
            )
            # Identifiers come from the model's metadata; every value is in the parameter.
            sql = (
                f"UPDATE {table} SET {assignments} "  # noqa: S608
                f"FROM {_recordset([pk, *columns])} WHERE {table}.{qn(pk.column)} = v.c0 "
                f"AND {table}.{qn(pk.column)} = ANY(%s::bigint[])"
            )
            # The key list again, as an array: it lets the planner count the rows and take
            # the primary key (it guesses 100 rows for any jsonb_to_recordset).
            keys = array_literal([row[0] for row in rows])
            cursor.execute(sql, [*fixed_values, _records(rows), keys])
        else:
            assignments = ", ".join(f"{qn(c.column)} = %s" for c in [*constants, *columns])
            cursor.executemany(
                f"UPDATE {table} SET {assignments} WHERE {qn(pk.column)} = %s",  # noqa: S608
                [
                    (
                        *fixed_values,
                        *(
                            c.get_db_prep_save(v, connection)
                            for c, v in zip(columns, row[1:], strict=True)
                        ),
                        row[0],
                    )
                    for row in rows
                ],
            )
    return len(rows)


def insert_rows(
    model: type[models.Model],
    fields: Sequence[str],
    rows: Sequence[tuple],
    same: dict[str, object] | None = None,
) -> int:
    """Insert ``rows`` (values in the order of ``fields``, then those of ``same`` for every
    row; every column given, no defaults) into ``model``'s table: one ``INSERT ... SELECT
    FROM jsonb_to_recordset(...)`` on PostgreSQL, one ``executemany`` elsewhere. Nothing is
    run for no rows."""
    if not rows:
        return 0
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    columns = _columns(model, fields)
    same = same or {}
    constants = _columns(model, list(same))
    fixed_values = [
        c.get_db_prep_save(v, connection) for c, v in zip(constants, same.values(), strict=True)
    ]
    names = ", ".join(qn(c.column) for c in [*columns, *constants])
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            selected = ", ".join([f"v.c{i}" for i in range(len(columns))] + ["%s"] * len(same))
            sql = (
                f"INSERT INTO {table} ({names}) SELECT {selected} "  # noqa: S608
                f"FROM {_recordset(columns)}"
            )
            cursor.execute(sql, [*fixed_values, _records(rows)])
        else:
            marks = ", ".join(["%s"] * (len(columns) + len(same)))
            cursor.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({marks})",  # noqa: S608
                [
                    (
                        *(
                            c.get_db_prep_save(v, connection)
                            for c, v in zip(columns, row, strict=True)
                        ),
                        *fixed_values,
                    )
                    for row in rows
                ],
            )
    return len(rows)
