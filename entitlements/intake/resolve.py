"""Resolving a parsed order against the registry: its school, portals and product."""

from __future__ import annotations

import json

from django.db.models import Exists, OuterRef

from aanspraak.choices import FunctionalCode
from aanspraak.models import Consent, Party, Product, School
from aanspraak.selectors.schools import AmbiguousSchool, find_school

from .parse import ParsedOrder
from .results import IntakeError


def resolve_school(ref: dict) -> School:
    """The order's buyer (``ref``: the parsed SchoolReference); IntakeError if it is unknown
    (functional code 23) or its identifiers name different schools."""
    try:
        school = find_school(ref)
    except AmbiguousSchool as exc:
        raise IntakeError([f"deliveryOrder.buyer.school: {exc}"]) from exc
    if school is None:
        raise IntakeError(
            [f"deliveryOrder.buyer.school: unknown school {json.dumps(ref)}"],
            code=FunctionalCode.ORGANISATION_UNKNOWN,
        )
    return school


def resolve_portals(parsed: ParsedOrder, school: School) -> list[Party]:
    if parsed.portal_ids is None:
        # Default: every portal the school consented to.
        return list(Party.objects.filter(is_portal=True, consented_schools=school).order_by("id"))
    found = {
        p.portal_id: p
        for p in Party.objects.filter(is_portal=True, portal_id__in=parsed.portal_ids).annotate(
            consented=Exists(Consent.objects.filter(school=school, party=OuterRef("pk")))
        )
    }
    for i, portal_id in enumerate(parsed.portal_ids):
        if portal_id not in found:
            raise IntakeError(
                [f"deliveryOrder.portals[{i}]: unknown portal {portal_id}"],
                code=FunctionalCode.ORGANISATION_UNKNOWN,
            )
        if not found[portal_id].consented:
            raise IntakeError(
                [
                    f"deliveryOrder.portals[{i}]: the school has not consented that portal "
                    f"{portal_id} receives its entitlement data"
                ],
                code=FunctionalCode.CONSENT_REQUIRED,
            )
    return [found[p] for p in parsed.portal_ids]


def resolve_product(parsed: ParsedOrder) -> Product:
    product = Product.objects.select_related("licensor").filter(product_id=parsed.product_id)
    found = product.first()
    if found is None:
        raise IntakeError([f"deliveryOrder.productId: unknown product {parsed.product_id}"])
    return found
