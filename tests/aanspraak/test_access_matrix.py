"""The access matrix: every role, every endpoint and every ownership (the caller's own data, another
party's, none), generated from one table (``MATRIX``), with the status, the functional code and
what was written. It proves that no party reads or changes another's data and that the
existence of another party's data never leaks: "another's" answers exactly as "none" does
(docs/api.md, "Who sees what").

The world (``world`` below): order A of Boekhandel Oost for Uitgeverij Noord's product at
Example College (consent: Portal Zuid, Dashboard West; portal Zuid); order B of Boekhandel Zee
for Uitgeverij Berg's product at Other Lyceum (consent: Portal Klei; portal Klei). The registry
gives a school-admin party no scope (a client without one cannot exist), so its row is a token
of that party's client holding no scope. A portal's 403/22 (an order it was sent without the
school's consent) is in tests/entitlements/test_read_api.py.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from oauth2_provider.models import AccessToken
from rest_framework.test import APIClient

from confirmations.models import Confirmation, ConfirmationState
from confirmations.services.apply import apply_all_pending
from entitlements.models import DeliveryOrder, Entitlement
from tests.aanspraak.test_openapi import delivery_order_body
from tests.support.confirm_helpers import (
    activation_body,
    licensor_body,
    portal_body,
    request_to,
)
from tests.support.factories import make_order

pytestmark = pytest.mark.django_db

# role -> the registry client that plays it (None: a caller without a valid token)
ROLES = {
    "seller": "oost-seller",
    "licensor": "noord-lr",
    "portal": "zuid-portal",
    "dashboard": "west-dashboard",
    "school-admin": "sis-admin",  # a client of the school's administration: no chain scope
    "no token": None,
    "expired token": "noord-lr",
    "revoked token": "noord-lr",
}
OWNERSHIP = ("own", "another's", "none")
ENDPOINTS = (
    "GET order",
    "PUT confirmation",
    "GET confirmation outcome",
    "PUT activation",
    "PUT deliveryorders",
)


@dataclass(frozen=True)
class Expect:
    http: int
    code: int | None = None  # the StatusResponse's status; None: not an error
    outcome: str | None = None  # what the worker decides of a stored confirmation


OK_READ = Expect(200)
STORED_APPLIED = Expect(202, outcome=ConfirmationState.APPLIED)
STORED_REJECTED = Expect(202, outcome=ConfirmationState.REJECTED)
NOT_FOUND = Expect(404, 99)
NO_SCOPE = Expect(403, 21)
NO_TOKEN = Expect(401, 99)


def _matrix() -> dict[tuple[str, str, str], Expect]:
    table: dict[tuple[str, str, str], Expect] = {}
    for endpoint in ENDPOINTS:
        for ownership in OWNERSHIP:
            for role in ("no token", "expired token", "revoked token"):
                table[role, endpoint, ownership] = NO_TOKEN
            table["school-admin", endpoint, ownership] = NO_SCOPE
    # Reads of an order: the seller, the product's registry, a consented portal or dashboard.
    for role in ("seller", "licensor", "portal", "dashboard"):
        table[role, "GET order", "own"] = OK_READ
        table[role, "GET order", "another's"] = NOT_FOUND
        table[role, "GET order", "none"] = NOT_FOUND
    # Confirmations: stored at once (202), checked by the worker against the requests the hub
    # sent the caller; another's request is rejected exactly like one that does not exist.
    for role in ("licensor", "portal"):
        table[role, "PUT confirmation", "own"] = STORED_APPLIED
        table[role, "PUT confirmation", "another's"] = STORED_REJECTED
        table[role, "PUT confirmation", "none"] = STORED_REJECTED
        table[role, "GET confirmation outcome", "own"] = OK_READ
        table[role, "GET confirmation outcome", "another's"] = NOT_FOUND
        table[role, "GET confirmation outcome", "none"] = NOT_FOUND
    for role in ("seller", "dashboard"):
        for ownership in OWNERSHIP:
            table[role, "PUT confirmation", ownership] = NO_SCOPE
            table[role, "GET confirmation outcome", ownership] = NO_SCOPE
    # Activations: the licence registry of the entitlement's product only.
    table["licensor", "PUT activation", "own"] = STORED_APPLIED
    table["licensor", "PUT activation", "another's"] = STORED_REJECTED
    table["licensor", "PUT activation", "none"] = STORED_REJECTED
    for role in ("seller", "portal", "dashboard"):
        for ownership in OWNERSHIP:
            table[role, "PUT activation", ownership] = NO_SCOPE
    # Orders: a seller places its own; cancelling another seller's order is "no such order".
    table["seller", "PUT deliveryorders", "own"] = Expect(202)
    table["seller", "PUT deliveryorders", "another's"] = Expect(400, 11)
    table["seller", "PUT deliveryorders", "none"] = Expect(400, 11)
    for role in ("licensor", "portal", "dashboard"):
        for ownership in OWNERSHIP:
            table[role, "PUT deliveryorders", ownership] = NO_SCOPE
    return table


MATRIX = _matrix()


def test_the_matrix_covers_every_role_endpoint_and_ownership():
    assert set(MATRIX) == {(r, e, o) for r in ROLES for e in ENDPOINTS for o in OWNERSHIP}


@pytest.fixture
def world(registry):
    from aanspraak.models import Client

    a = make_order(registry, 1, delivery_order_id="DO-A")
    b = make_order(
        registry,
        1,
        delivery_order_id="DO-B",
        seller=registry.other_seller,
        school=registry.other_school,
        product=registry.other_product,
        portals=[registry.other_portal],
    )
    ea, eb = a.entitlements.get(), b.entitlements.get()
    registry.clients["sis-admin"] = Client.objects.create(
        client_id="sis-admin",
        name="SIS Example",
        party=registry.school_admin,
        client_type=Client.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
        allowed_scopes="eduv.entitlement.dashboard",  # the table requires one
    )
    # One earlier confirmation of each registry, for the outcome lookups.
    berg = APIClient()
    berg.credentials(HTTP_AUTHORIZATION=f"Bearer {_token(registry, 'berg-lr')}")
    theirs = licensor_body(request_to(eb, registry.other_licensor))
    assert berg.put("/entitlements/confirmations", theirs, format="json").status_code == 202
    apply_all_pending()  # decided before any case runs: what follows must leave B alone
    return SimpleNamespace(a=a, b=b, ea=ea, eb=eb, registry=registry, theirs=theirs)


def _token(registry, client_id: str, *, expires_in: int = 3600) -> str:
    import datetime as dt
    import secrets

    from django.utils import timezone

    client = registry.clients[client_id]
    token = secrets.token_urlsafe(30)
    AccessToken.objects.create(
        application=client,
        token=token,
        scope="" if client_id == "sis-admin" else client.allowed_scopes,
        expires=timezone.now() + dt.timedelta(seconds=expires_in),
    )
    return token


def _caller(world, role: str) -> APIClient:
    client = APIClient()
    client_id = ROLES[role]
    if client_id is None:
        return client
    token = _token(world.registry, client_id, expires_in=-60 if role == "expired token" else 3600)
    if role == "revoked token":
        AccessToken.objects.filter(token=token).delete()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _request(world, role: str, endpoint: str, ownership: str):
    """Make the request of (role, endpoint, ownership); returns (response, stored receive id)."""
    registry, caller = world.registry, _caller(world, role)
    mine = world.ea  # order A: the seller's, the licensor's product, the portal's and dashboard's
    if endpoint == "GET order":
        order_id = {"own": "DO-A", "another's": "DO-B", "none": "DO-NONE"}[ownership]
        return caller.get(f"/entitlements/deliveryorder/{order_id}"), None
    if endpoint == "PUT confirmation":
        is_portal = role == "portal"
        party = registry.portal if is_portal else registry.licensor
        other = registry.other_portal if is_portal else registry.other_licensor
        message = {
            "own": request_to(mine, party),
            "another's": request_to(world.eb, other),
            "none": request_to(mine, party),
        }[ownership]
        body = portal_body(message) if is_portal else licensor_body(message)
        if is_portal and ownership == "another's":  # the portal names itself, as a sender must
            body["newUrlStatus"]["portal"] = registry.portal.portal_id
        if ownership == "none":
            body["entitlementReferenceId"] = str(uuid.uuid4())
        response = caller.put("/entitlements/confirmations", body, format="json")
        return response, body["entitlementReceiveId"]
    if endpoint == "GET confirmation outcome":
        receive_id = {"another's": world.theirs["entitlementReceiveId"], "none": "rcv-none"}.get(
            ownership, "rcv-unused"
        )
        if ownership == "own" and role in ("licensor", "portal"):
            is_portal = role == "portal"
            party = registry.portal if is_portal else registry.licensor
            message = request_to(mine, party)
            body = portal_body(message) if is_portal else licensor_body(message)
            assert caller.put("/entitlements/confirmations", body, format="json").status_code == 202
            receive_id = body["entitlementReceiveId"]
        return caller.get(f"/entitlements/confirmations/{receive_id}"), None
    if endpoint == "PUT activation":
        entitlement = {"own": mine, "another's": world.eb, "none": mine}[ownership]
        body = activation_body(
            entitlement, user={"userMasterIdentifier": entitlement.user_master_identifier}
        )
        if ownership == "none":
            body["entitlementId"] = str(uuid.uuid4())
        response = caller.put("/usage/activation", body, format="json")
        return response, body["initialActivationReferenceId"]
    if endpoint == "PUT deliveryorders":
        if ownership == "own":
            body = delivery_order_body("DO-NEW")
        else:
            order_id = "DO-B" if ownership == "another's" else "DO-NONE"
            body = {
                "deliveryOrderReferenceId": str(uuid.uuid4()),
                "deliveryOrder": {
                    "deliveryOrderId": order_id,
                    "status": "cancelled",
                    "endDate": "2026-12-31",
                },
            }
        return caller.put("/deliveryorders", body, format="json"), None
    raise AssertionError(endpoint)


def _state(world) -> tuple:
    """What a request must not change of another party's data."""
    b = DeliveryOrder.objects.get(pk=world.b.pk)
    eb = Entitlement.objects.get(pk=world.eb.pk)
    return (b.status, eb.status, eb.end_date, list(eb.url_statuses.values_list("status")))


CASES = sorted(MATRIX)


@pytest.mark.parametrize(("role", "endpoint", "ownership"), CASES)
def test_access(world, role, endpoint, ownership):
    expect = MATRIX[role, endpoint, ownership]
    others_before = _state(world)
    orders_before = DeliveryOrder.objects.count()
    response, stored = _request(world, role, endpoint, ownership)
    assert response.status_code == expect.http, (role, endpoint, ownership, response.content)
    if expect.code is not None:
        body = response.json()
        assert set(body) == {"status", "statusMessage"}
        assert body["status"] == expect.code
    if expect.http == 200 and endpoint == "GET order":
        read = json.loads(b"".join(response.streaming_content))
        assert [e["entitlementId"] for e in read] == [str(world.ea.entitlement_id)]
    if expect.http >= 400 and endpoint == "PUT deliveryorders":
        assert DeliveryOrder.objects.count() == orders_before
    if expect.http in (401, 403) and stored:
        assert not Confirmation.objects.filter(receive_id=stored).exists()
    if expect.outcome:
        apply_all_pending()
        decided = Confirmation.objects.get(receive_id=stored)
        assert decided.state == expect.outcome, decided.reason
    assert _state(world) == others_before  # another party's data never changes


@pytest.mark.parametrize(
    ("role", "endpoint"),
    sorted(
        {(r, e) for r, e, o in MATRIX if MATRIX[r, e, o].http >= 400 or MATRIX[r, e, o].outcome}
    ),
)
def test_anothers_data_answers_exactly_as_none(world, role, endpoint):
    """Existence never leaks: the answer (and the worker's reason) for another party's data is
    the one for data that does not exist, up to the identifier named."""
    answers = []
    for ownership in ("another's", "none"):
        response, stored = _request(world, role, endpoint, ownership)
        text = (
            b"".join(response.streaming_content) if response.streaming else response.content
        ).decode()
        if MATRIX[role, endpoint, ownership].outcome:
            apply_all_pending()
            text = Confirmation.objects.get(receive_id=stored).reason
        for name in ("DO-B", "DO-NONE", "rcv-none", world.theirs["entitlementReceiveId"]):
            text = text.replace(name, "<id>")
        for value in (world.eb.entitlement_id, world.ea.entitlement_id):
            text = text.replace(str(value), "<id>")
        answers.append((response.status_code, _without_uuids(text)))
    assert answers[0] == answers[1]


def _without_uuids(text: str) -> str:
    import re

    return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id>", text)
