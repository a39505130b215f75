"""Test data: the test registry and bulk builders of delivery orders with entitlements."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid

from entitlements.models import (
    DeliveryOrder,
    DeliveryOrderPortal,
    Entitlement,
    EntitlementUrlStatus,
    OutboundMessage,
)
from entitlements.statuses import (
    ACTIVATION_CODE_TYPES,
    DeliveryType,
    EntitlementType,
    MessageKind,
    UrlStatus,
)

# Two of each role so that every test of scoping has an "other" party to be kept out.
REGISTRY = {
    "parties": [
        {
            "name": "Boekhandel Oost",
            "roles": ["seller"],
            "endpoint": {"baseUrl": "http://127.0.0.1:9103"},
            "clients": [
                {
                    "clientId": "oost-seller",
                    "clientSecret": "oost-seller-secret",
                    "scopes": ["eduv.entitlement.seller"],
                }
            ],
        },
        {
            "name": "Boekhandel Zee",
            "roles": ["seller"],
            "clients": [
                {
                    "clientId": "zee-seller",
                    "clientSecret": "zee-seller-secret",
                    "scopes": ["eduv.entitlement.seller"],
                }
            ],
        },
        {
            "name": "Uitgeverij Noord",
            "roles": ["licensor"],
            "endpoint": {"baseUrl": "http://127.0.0.1:9101"},
            "products": ["9789001000011"],
            "clients": [
                {
                    "clientId": "noord-lr",
                    "clientSecret": "noord-lr-secret",
                    "scopes": ["eduv.entitlement.licensor", "eduv.usage.licensor"],
                }
            ],
        },
        {
            "name": "Uitgeverij Berg",
            "roles": ["licensor"],
            "products": ["9789002000010"],
            "clients": [
                {
                    "clientId": "berg-lr",
                    "clientSecret": "berg-lr-secret",
                    "scopes": ["eduv.entitlement.licensor", "eduv.usage.licensor"],
                }
            ],
        },
        {
            "name": "Portal Zuid",
            "roles": ["portal"],
            "portalId": "portal-zuid",
            "endpoint": {"baseUrl": "http://127.0.0.1:9102"},
            "clients": [
                {
                    "clientId": "zuid-portal",
                    "clientSecret": "zuid-portal-secret",
                    "scopes": ["eduv.entitlement.portal"],
                }
            ],
        },
        {
            "name": "Portal Klei",
            "roles": ["portal"],
            "portalId": "portal-klei",
            "clients": [
                {
                    "clientId": "klei-portal",
                    "clientSecret": "klei-portal-secret",
                    "scopes": ["eduv.entitlement.portal"],
                }
            ],
        },
        {
            "name": "Dashboard West",
            "roles": ["dashboard"],
            "clients": [
                {
                    "clientId": "west-dashboard",
                    "clientSecret": "west-dashboard-secret",
                    "scopes": ["eduv.entitlement.dashboard"],
                }
            ],
        },
        {"name": "SIS Example", "roles": ["school-admin"]},
    ],
    "schools": [
        {
            "organisationMasterIdentifier": "110A133",
            "name": "Example College",
            "consents": ["Portal Zuid", "Dashboard West"],
            "administration": "SIS Example",
        },
        {
            "organisationMasterIdentifier": "220B244",
            "name": "Other Lyceum",
            "organisationIds": [{"organisationId": "22BB", "organisationIdType": "BP_ID"}],
            "consents": ["Portal Klei"],
        },
    ],
}

PERSON_TYPES = {
    DeliveryType.SCHOOL_STUDENTS: EntitlementType.SCHOOL_STUDENT,
    DeliveryType.SCHOOL_EMPLOYEES: EntitlementType.SCHOOL_EMPLOYEE,
    DeliveryType.SCHOOL_ACTIVATIONCODES: EntitlementType.SCHOOL_ACTIVATIONCODE,
    DeliveryType.CUSTOMER_USER: EntitlementType.CUSTOMER_STUDENT,
    DeliveryType.CUSTOMER_ACTIVATIONCODE: EntitlementType.CUSTOMER_ACTIVATIONCODE,
}


def make_order(
    registry,
    n: int = 3,
    *,
    delivery_order_id: str | None = None,
    seller=None,
    school=None,
    product=None,
    delivery_type: str = DeliveryType.SCHOOL_STUDENTS,
    portals=None,
    with_messages: bool = True,
) -> DeliveryOrder:
    """A delivery order with ``n`` entitlements, their URL statuses and (optionally) the
    Entitlement requests the hub would have sent, written with bulk inserts."""
    school = school or registry.school
    portals = list(portals if portals is not None else [registry.portal])
    order = DeliveryOrder.objects.create(
        seller=seller or registry.seller,
        delivery_order_id=delivery_order_id or f"DO-{uuid.uuid4().hex[:8]}",
        contract_id="C-1",
        school=school,
        product=product or registry.product,
        delivery_type=delivery_type,
        start_date=dt.date(2026, 8, 1),
        activation_until_date=dt.date(2026, 10, 1),
        expiration_date=dt.date(2027, 7, 31),
    )
    DeliveryOrderPortal.objects.bulk_create(
        DeliveryOrderPortal(delivery_order=order, portal=p) for p in portals
    )
    etype = PERSON_TYPES[delivery_type]
    school_ref = {"organisationMasterIdentifier": school.organisation_master_identifier}
    # entitlementSpecification (docs/api.md): customer-* entitlements carry no school.
    on_school = {} if etype.startswith("customer-") else {"school": school_ref}
    rows = []
    for i in range(n):
        if etype in ACTIVATION_CODE_TYPES:
            code = secrets.token_hex(8).upper()
            rows.append(
                Entitlement(
                    delivery_order=order,
                    entitlement_type=etype,
                    activation_code=code,
                    specification={**on_school, "activationCode": code},
                )
            )
        else:
            user = {"userMasterIdentifier": f"https://ketenid.nl/201703/{uuid.uuid4().hex}{i}"}
            rows.append(
                Entitlement(
                    delivery_order=order,
                    entitlement_type=etype,
                    user_master_identifier=user["userMasterIdentifier"],
                    specification={**on_school, "user": user},
                )
            )
    entitlements = Entitlement.objects.bulk_create(rows, batch_size=2000)
    EntitlementUrlStatus.objects.bulk_create(
        (
            EntitlementUrlStatus(entitlement=e, portal=p, status=UrlStatus.UNINITIALIZED)
            for e in entitlements
            for p in portals
        ),
        batch_size=2000,
    )
    if with_messages:
        licensor = order.product.licensor
        messages = []
        for e in entitlements:
            messages.append(
                OutboundMessage(
                    kind=MessageKind.ENTITLEMENT_REQUEST,
                    recipient=licensor,
                    entitlement=e,
                    proposed_entitlement_status="created",
                )
            )
            messages.extend(
                OutboundMessage(
                    kind=MessageKind.ENTITLEMENT_REQUEST,
                    recipient=p,
                    entitlement=e,
                    proposed_url_status=UrlStatus.INITIALIZED,
                )
                for p in portals
            )
        OutboundMessage.objects.bulk_create(messages, batch_size=2000)
    return order
