"""Fast inserts of many rows: PostgreSQL's COPY (psycopg 3) where available, ``bulk_create``
elsewhere (SQLite, the embedded default).

COPY streams all rows in one statement and is several times faster than multi-row INSERTs
for the hundreds of thousands of rows an order of 100,000 students makes (see
docs/performance.md). Rows are tuples in the order of ``fields`` (attribute names such as
``delivery_order_id``); every column must be given, defaults and ``auto_now`` are not applied.
Values that are the same for every row (timestamps) or many (UUIDs) are best passed as
strings: psycopg's C code copies strings much faster than it adapts Python objects.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence

from django.db import connection, models

BULK_BATCH_SIZE = 2000


class RawJson(str):
    """A JSON column's value already encoded (saves a json.dumps per row in hot loops)."""


def insert_rows(model: type[models.Model], fields: Sequence[str], rows: Iterable[tuple]) -> int:
    """Insert ``rows`` into ``model``'s table; returns the number of rows inserted."""
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    if connection.vendor == "postgresql":
        json_positions = [i for i, f in enumerate(columns) if isinstance(f, models.JSONField)]
        table = connection.ops.quote_name(meta.db_table)
        names = ", ".join(connection.ops.quote_name(f.column) for f in columns)
        count = 0
        with connection.cursor() as cursor:
            raw = cursor.cursor  # the psycopg cursor under Django's wrapper
            with raw.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    if json_positions:
                        row = list(row)
                        for i in json_positions:
                            if row[i] is not None and not isinstance(row[i], RawJson):
                                row[i] = json.dumps(row[i])
                    copy.write_row(row)
                    count += 1
        return count
    objects = [
        model(
            **{
                name: json.loads(value) if isinstance(value, RawJson) else value
                for name, value in zip(fields, row, strict=True)
            }
        )
        for row in rows
    ]
    model.objects.bulk_create(objects, batch_size=BULK_BATCH_SIZE)
    return len(objects)


def uuid4_strings(count: int) -> Iterator[str]:
    """``count`` random (version 4) UUIDs as strings, from one read of the OS's random source:
    several times faster than ``str(uuid.uuid4())`` per row for orders of 100,000."""
    raw = bytearray(os.urandom(16 * count))
    for i in range(count):
        chunk = raw[16 * i : 16 * i + 16]
        chunk[6] = (chunk[6] & 0x0F) | 0x40  # version 4
        chunk[8] = (chunk[8] & 0x3F) | 0x80  # RFC 4122 variant
        h = chunk.hex()
        yield f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
