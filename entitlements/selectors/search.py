"""The support desk's one search: a term (or several) to the entitlements it names.

Support staff paste whatever they were given: an ECK iD or another userId, an activation
code, an entitlementId, a deliveryOrderId, the entitlementReferenceId of a request the hub
sent, the entitlementReceiveId of a confirmation or activation, a productId or a school's
identifier. Each term is classified by its shape (a UUID, a URL such as an ECK iD, anything
else) and looked up with exact matches on indexed columns only, one query per kind of
lookup whatever the number of terms: no ``%LIKE%`` scan, no join that needs ``DISTINCT``
(docs/support-desk.md, "Search").

The answer is a ``Q`` over ``Entitlement`` built from constants (primary keys of
entitlements and of delivery orders), so the changelist's own query is an index scan of the
primary key or of the order's foreign key.

Confirmations live in a higher layer (``confirmations`` → ``entitlements``): their lookup is
registered by the confirmations app at start-up (``register_resolver``), so this module
never imports it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum

from django.db import connection
from django.db.models import Q
from django.utils.text import smart_split, unescape_string_literal

from aanspraak.choices import OrganisationIdType
from aanspraak.models import Product, School, SchoolOrganisationId
from entitlements.models import DeliveryOrder, Entitlement, OutboundMessage

# Terms per search: a pasted list is fine, a pasted file is not.
MAX_TERMS = 50


class Shape(Enum):
    """What a term looks like; decides which columns it is looked up in."""

    UUID = "uuid"
    URL = "url"  # an ECK iD (https://ketenid.nl/…) or another URL-shaped userId
    TEXT = "text"


@dataclass
class Hits:
    """What a search found: entitlements by primary key, and delivery orders (all of whose
    entitlements match)."""

    entitlement_pks: set[int] = field(default_factory=set)
    order_pks: set[int] = field(default_factory=set)

    def as_q(self) -> Q:
        """The entitlements found, as a filter of constants (empty: matches nothing)."""
        q = Q(pk__in=sorted(self.entitlement_pks))
        if self.order_pks:
            q |= Q(delivery_order_id__in=sorted(self.order_pks))
        return q


@dataclass(frozen=True)
class Terms:
    """A search's terms grouped by shape; UUIDs parsed."""

    uuids: tuple[uuid.UUID, ...]
    urls: tuple[str, ...]
    texts: tuple[str, ...]

    @property
    def strings(self) -> tuple[str, ...]:
        """Every term as typed (UUIDs in their canonical form): for text columns that may
        hold any shape (a deliveryOrderId or an entitlementReceiveId may be a UUID)."""
        return (*(str(u) for u in self.uuids), *self.urls, *self.texts)


# A resolver of another app: terms → primary keys of entitlements (docs/support-desk.md).
Resolver = Callable[[Terms], Iterable[int]]
_resolvers: dict[str, Resolver] = {}


def register_resolver(name: str, resolver: Resolver) -> None:
    """Add a lookup owned by a higher layer (the confirmations app registers its
    entitlementReceiveId lookup from ``AppConfig.ready``). Registering a name again replaces
    it, so a reload never doubles a lookup."""
    _resolvers[name] = resolver


def shape_of(term: str) -> Shape:
    """Classify one term."""
    try:
        uuid.UUID(term)
    except ValueError:
        pass
    else:
        if len(term) in (32, 36):  # not the braced/urn forms uuid.UUID also accepts
            return Shape.UUID
    if term.startswith(("https://", "http://")):
        return Shape.URL
    return Shape.TEXT


def parse_terms(search: str) -> Terms:
    """Split a search as the admin does (whitespace, quotes keep a term whole) and group the
    terms by shape; at most ``MAX_TERMS``, duplicates dropped."""
    seen: dict[str, None] = {}
    for bit in smart_split(search):
        if bit.startswith(('"', "'")) and bit[0] == bit[-1] and len(bit) > 1:
            bit = unescape_string_literal(bit)
        bit = bit.strip()
        if bit:
            seen.setdefault(bit, None)
    uuids, urls, texts = [], [], []
    for term in list(seen)[:MAX_TERMS]:
        shape = shape_of(term)
        if shape is Shape.UUID:
            uuids.append(uuid.UUID(term))
        elif shape is Shape.URL:
            urls.append(term)
        else:
            texts.append(term)
    return Terms(tuple(uuids), tuple(urls), tuple(texts))


def _user_id_pks(values: tuple[str, ...]) -> set[int]:
    """Entitlements with one of ``values`` among their ``userIds`` (the GIN index
    ``entitlement_userids_idx``, PostgreSQL only: the embedded SQLite has no containment)."""
    if not values or connection.vendor != "postgresql":
        return set()
    q = Q()
    for value in values:
        q |= Q(user_ids__contains=[{"userId": value}])
    return set(
        Entitlement.objects.filter(user_ids__isnull=False).filter(q).values_list("pk", flat=True)
    )


def find_entitlements(search: str) -> Hits:
    """The entitlements a support search names, by exact indexed lookups only.

    Queries: at most one per kind of lookup (about ten), whatever the number of terms and
    whatever the number of rows found."""
    terms = parse_terms(search)
    hits = Hits()
    if not (terms.uuids or terms.urls or terms.texts):
        return hits
    strings = terms.strings
    people = (*terms.urls, *terms.texts)
    if terms.uuids:
        # entitlementId, or the entitlementReferenceId of a request sent for it.
        hits.entitlement_pks.update(
            Entitlement.objects.filter(entitlement_id__in=terms.uuids).values_list("pk", flat=True)
        )
        hits.entitlement_pks.update(
            OutboundMessage.objects.filter(
                reference_id__in=terms.uuids, entitlement__isnull=False
            ).values_list("entitlement_id", flat=True)
        )
    if people:
        # An ECK iD, another userId, an enrollmentId, an activation code.
        hits.entitlement_pks.update(
            Entitlement.objects.filter(
                Q(user_master_identifier__in=people)
                | Q(enrollment_id__in=people)
                | Q(activation_code__in=people)
            ).values_list("pk", flat=True)
        )
        hits.entitlement_pks.update(_user_id_pks(people))
    # A deliveryOrderId (a seller may choose any shape), a productId, a school's identifier.
    hits.order_pks.update(
        DeliveryOrder.objects.filter(delivery_order_id__in=strings).values_list("pk", flat=True)
    )
    if terms.texts:
        hits.order_pks.update(
            DeliveryOrder.objects.filter(
                product__in=Product.objects.filter(product_id__in=terms.texts).values("pk")
            ).values_list("pk", flat=True)
        )
        schools = set(
            School.objects.filter(organisation_master_identifier__in=terms.texts).values_list(
                "pk", flat=True
            )
        )
        # (type, id) is the unique index: naming every type lets the lookup use it.
        schools.update(
            SchoolOrganisationId.objects.filter(
                organisation_id_type__in=OrganisationIdType.values,
                organisation_id__in=terms.texts,
            ).values_list("school_id", flat=True)
        )
        if schools:
            hits.order_pks.update(
                DeliveryOrder.objects.filter(school_id__in=schools).values_list("pk", flat=True)
            )
    for resolver in _resolvers.values():
        hits.entitlement_pks.update(resolver(terms))
    return hits
