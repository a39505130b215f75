"""``field__any=values``: membership in many keys as one array parameter.

On PostgreSQL ``field = ANY('{1,2,3}'::bigint[])``: one string parameter (psycopg's
client-side quoting of thousands of separate parameters was a fifth of the apply worker's
time, docs/performance.md, P3), a constant whose length the planner counts, and a plan that
does not depend on the table's statistics: an index scan, or at worst one pass with a hashed
lookup. The ``IN (SELECT unnest(…))`` it replaces is a semi-join; when the statistics were
stale (just after a school start's deliveries) the planner guessed one matching row and
re-scanned the whole table once per key (0.3-0.9 s a batch, docs/performance.md, P5).
Elsewhere (SQLite), and for values other than integers and UUIDs (which the literal does
not quote), it is Django's ``IN``.
"""

from __future__ import annotations

from django.core.exceptions import EmptyResultSet
from django.db.models import Field, ForeignObject
from django.db.models.lookups import In

# Column types whose values need no quoting inside an array literal.
ARRAY_TYPES = frozenset({"smallint", "integer", "bigint", "uuid"})


def array_literal(values) -> str:
    """A PostgreSQL array literal of plain values (integers, UUIDs): one string parameter,
    and a constant the planner counts, where a JSON set would be guessed at 100 rows."""
    return "{" + ",".join(map(str, values)) + "}"


class AnyOf(In):
    lookup_name = "any"

    def get_prep_lookup(self):
        # A collection of plain integers is what the literal writes: Django's ``In`` calls the
        # field's ``get_prep_value`` once per value (2 % of the apply worker, P3).
        values = self.rhs
        if isinstance(values, list | tuple | set | frozenset) and set(map(type, values)) <= {int}:
            return list(values)
        return super().get_prep_lookup()

    def as_postgresql(self, compiler, connection):
        db_type = self.lhs.output_field.db_type(connection)
        if db_type not in ARRAY_TYPES or not self.rhs_is_direct_value():
            return self.as_sql(compiler, connection)
        values = [value for value in self.rhs if value is not None]
        if not values:
            raise EmptyResultSet
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s::{db_type}[])", (*lhs_params, array_literal(values))


# Related fields keep lookups of their own: register on them too, for ``entitlement__any``.
Field.register_lookup(AnyOf)
ForeignObject.register_lookup(AnyOf)
