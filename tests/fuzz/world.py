"""The data the fuzzer runs against, and the steering that lets generated requests reach the
happy paths (docs/api.md, "Fuzzing").

``build_world`` loads the test registry (tests/support/factories.py) with a client of every
role, including the school administration's (a token without any chain scope, as in
tests/aanspraak/test_access_matrix.py), and places orders of two sellers, so that every
operation has the caller's own data, another party's and none.

``steer`` overlays, on every other *positive* case, the references a generated body cannot
guess (an existing order, product, school, the hub's request reference of an entitlement, a
stored receive id); the rest of the case stays as generated. Negative cases are never
touched: they must stay invalid.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass, field
from itertools import count

from django.utils import timezone
from oauth2_provider.models import AccessToken

from aanspraak.models import Client
from confirmations.models import Confirmation
from entitlements.models import (
    DeliveryOrder,
    DeliveryOrderIntake,
    Entitlement,
    EntitlementUrlStatus,
    OutboundMessage,
    StatusEvent,
)
from entitlements.statuses import DeliveryType
from tests.support.confirm_helpers import licensor_body, portal_body, request_to, store
from tests.support.factories import make_order

# role -> the registry client that plays it
ROLES = {
    "seller": "oost-seller",
    "licensor": "noord-lr",
    "portal": "zuid-portal",
    "dashboard": "west-dashboard",
    "school-admin": "sis-admin",
}

# What a refused request must leave as it was (docs/api.md, "Errors": nothing is written).
WRITTEN = (
    DeliveryOrder,
    DeliveryOrderIntake,
    Entitlement,
    EntitlementUrlStatus,
    OutboundMessage,
    StatusEvent,
    Confirmation,
)

# A valid deliverySpecification per deliveryType (docs/delivery.md).
SPECIFICATIONS = {
    "school-students": lambda n: {
        "students": [{"userMasterIdentifier": f"https://ketenid.nl/201703/fz{n}"}]
    },
    "school-employees": lambda n: {
        "employees": [{"userIds": [{"userId": f"emp-{n}", "userIdType": "eckId"}]}]
    },
    "customer-user": lambda n: {
        "users": [{"userMasterIdentifier": f"https://ketenid.nl/201703/cu{n}"}]
    },
    "school-activationcodes": lambda n: {"quantity": 2},
    "customer-activationcode": lambda n: {"quantity": 1},
    "customer-activatoncode": lambda n: {"quantity": 1},
}


@dataclass
class World:
    registry: object
    tokens: dict[str, str]
    orders: list[str]  # deliveryOrderIds: the seller's own, another seller's, codes
    receive_ids: dict[str, str]  # role -> a confirmation it stored
    entitlement: Entitlement  # of the own order
    calls: count = field(default_factory=count)

    def header(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def _token(client: Client, scope: str) -> str:
    token = secrets.token_urlsafe(30)
    AccessToken.objects.create(
        application=client,
        token=token,
        scope=scope,
        expires=timezone.now() + dt.timedelta(hours=2),
    )
    return token


def build_world(registry) -> World:
    registry.clients["sis-admin"] = Client.objects.create(
        client_id="sis-admin",
        name="SIS Example",
        party=registry.school_admin,
        client_type=Client.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
        allowed_scopes="eduv.entitlement.dashboard",  # the registry table requires one
    )
    tokens = {
        role: _token(
            registry.clients[client_id],
            "" if role == "school-admin" else registry.clients[client_id].allowed_scopes,
        )
        for role, client_id in ROLES.items()
    }
    own = make_order(registry, 2, delivery_order_id="DO-FZ-A")
    make_order(
        registry,
        1,
        delivery_order_id="DO-FZ-B",
        seller=registry.other_seller,
        school=registry.other_school,
        product=registry.other_product,
        portals=[registry.other_portal],
    )
    make_order(
        registry, 2, delivery_order_id="DO-FZ-C", delivery_type=DeliveryType.SCHOOL_ACTIVATIONCODES
    )
    entitlement = own.entitlements.order_by("id").first()
    receive_ids = {}
    for role, party, body in (
        ("licensor", registry.licensor, licensor_body),
        ("portal", registry.portal, portal_body),
    ):
        confirmation = body(request_to(entitlement, party))
        store(party, confirmation)
        receive_ids[role] = confirmation["entitlementReceiveId"]
    return World(
        registry=registry,
        tokens=tokens,
        orders=["DO-FZ-A", "DO-FZ-B", "DO-FZ-C"],
        receive_ids=receive_ids,
        entitlement=entitlement,
    )


def written() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in WRITTEN)


# --- Steering ---------------------------------------------------------------------------------


def steer(world: World, case, role: str) -> bool:
    """Overlay real references on every other positive case of an operation; True if it did."""
    n = next(world.calls)
    meta = case.meta
    if n % 2 or meta is None or not meta.generation.mode.is_positive:
        return False
    key = (case.method.upper(), case.path)
    registry, entitlement = world.registry, world.entitlement
    order = entitlement.delivery_order
    if key == ("GET", "/entitlements/deliveryorder/{id}"):
        case.path_parameters["id"] = world.orders[(n // 2) % len(world.orders)]
    elif key == ("GET", "/entitlements/confirmations/{entitlementReceiveId}"):
        case.path_parameters["entitlementReceiveId"] = world.receive_ids.get(role, "rcv-none")
    elif key == ("PUT", "/deliveryorders") and isinstance(case.body, dict):
        _steer_order(case.body, registry, n)
    elif key == ("PUT", "/entitlements/confirmations") and isinstance(case.body, dict):
        party = registry.portal if role == "portal" else registry.licensor
        message = request_to(entitlement, party)
        case.body.update(
            entitlementReferenceId=str(message.reference_id),
            entitlementId=str(entitlement.entitlement_id),
            productId=order.product.product_id,
        )
        if role == "portal" and isinstance(case.body.get("newUrlStatus"), dict):
            case.body["newUrlStatus"]["portal"] = registry.portal.portal_id
    elif key == ("PUT", "/usage/activation") and isinstance(case.body, dict):
        case.body.update(
            entitlementId=str(entitlement.entitlement_id),
            productId=order.product.product_id,
            entitlementType=entitlement.entitlement_type,
            school={"organisationMasterIdentifier": order.school.organisation_master_identifier},
        )
    return True


def _without_nul_keys(value):
    """``value`` without the keys that hold a NUL: the hub refuses a NUL anywhere, even in an
    unknown key it would otherwise ignore (docs/api.md), and the document's open objects let
    the generator make such keys."""
    if isinstance(value, dict):
        return {k: _without_nul_keys(v) for k, v in value.items() if "\x00" not in k}
    if isinstance(value, list):
        return [_without_nul_keys(v) for v in value]
    return value


def _steer_order(body: dict, registry, n: int) -> None:
    cleaned = _without_nul_keys(body)
    body.clear()
    body.update(cleaned)
    order = body.get("deliveryOrder")
    if not isinstance(order, dict):
        return
    body["deliveryOrderReferenceId"] = str(uuid.uuid4())
    if order.get("status") == "cancelled":
        order["deliveryOrderId"] = "DO-FZ-A"
        order.pop("productId", None)
        return
    kind = order.get("deliveryType")
    order.update(
        deliveryOrderId=f"DO-FZ-{n}",
        buyer={"school": {"organisationMasterIdentifier": "110A133"}},
        productId=registry.product.product_id,
        startDate="2026-08-01",
        activationUntilDate="2026-10-01",
        expirationDate="2027-07-31",
    )
    order.pop("portals", None)
    if kind in SPECIFICATIONS:
        order["deliverySpecification"] = SPECIFICATIONS[kind](n)
