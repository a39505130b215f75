"""Exact, indexed search for admin changelists of large tables (docs/support-desk.md,
"Search").

Django's ``search_fields`` match ``UPPER(column) LIKE UPPER('%term%')`` (or, with ``=``,
``UPPER(column) = UPPER(term)``, and a cast to text for a UUID): no index can answer either,
so on millions of rows every search reads the whole table. A changelist with
``ExactSearchMixin`` names its searchable columns with how a term must look to be compared
(``exact_search = {"reference_id": "uuid", "entitlement__delivery_order__delivery_order_id":
"text"}``) and matches terms with ``=`` only, on indexed columns, skipping a term that cannot
be a value of the column (a non-UUID never reaches a UUID column).

A path through a relation (``entitlement__entitlement_id``) is resolved first, in a query of
its own, to at most ``RELATED_UP_TO`` primary keys of the related rows: the changelist's
query then ORs constant lists of indexed columns (a bitmap OR of index scans), where an OR
across a join would make PostgreSQL read the whole table.
"""

from __future__ import annotations

import uuid

from django.db.models import Q
from django.utils.text import smart_split, unescape_string_literal


def _as_uuid(term: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(term)
    except ValueError:
        return None


def _as_int(term: str) -> int | None:
    return int(term) if term.isdigit() and len(term) < 19 else None


# Related rows a term may stand for (a deliveryOrderId on the message list: the first ones of
# the order's entitlements); the entitlement search covers whole orders.
RELATED_UP_TO = 1000

PARSERS = {"uuid": _as_uuid, "int": _as_int, "text": lambda term: term}


def search_terms(search: str) -> list[str]:
    """The terms of a search, split as the admin splits them (quotes keep a term whole)."""
    terms = []
    for bit in smart_split(search):
        if bit.startswith(('"', "'")) and bit[0] == bit[-1] and len(bit) > 1:
            bit = unescape_string_literal(bit)
        if bit.strip():
            terms.append(bit.strip())
    return terms


def _condition(model, path: str, values: list) -> Q:
    """``path IN values``, with a relation's part resolved to constants first."""
    head, _, rest = path.partition("__")
    field = model._meta.get_field(head)
    if not rest or not field.is_relation:
        return Q(**{f"{path}__in": values})
    related = field.related_model
    pks = list(
        related.objects.filter(**{f"{rest}__in": values}).values_list("pk", flat=True)[
            :RELATED_UP_TO
        ]
    )
    return Q(**{f"{head}__in": pks})


def exact_search_q(model, fields: dict[str, str], search: str) -> Q | None:
    """Rows of ``model`` where any term equals any of ``fields`` (path →
    ``uuid``/``int``/``text``); None when there is nothing to search for. One query per
    related path, whatever the number of terms."""
    terms = search_terms(search)
    if not terms:
        return None
    q = Q(pk__in=[])
    for path, kind in fields.items():
        values = [v for v in (PARSERS[kind](t) for t in terms) if v is not None]
        if values:
            q |= _condition(model, path, values)
    return q


class ExactSearchMixin:
    """A ModelAdmin mixin: search by ``exact_search`` (forward relations only, so a row is
    never listed twice and no ``DISTINCT`` is needed)."""

    exact_search: dict[str, str] = {}

    def get_search_fields(self, request):
        # Django shows the search box when this is not empty; the matching is ours.
        return list(self.exact_search)

    def get_search_results(self, request, queryset, search_term):
        """Filter by the exact matches of the search's terms."""
        q = exact_search_q(queryset.model, self.exact_search, search_term)
        return (queryset if q is None else queryset.filter(q)), False
