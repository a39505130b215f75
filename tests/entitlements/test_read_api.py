"""GET /entitlements/deliveryorder/{id} (seed 002): who sees what, the exact shape, errors,
and a constant number of queries whatever the size of the order."""

from __future__ import annotations

import datetime as dt
import json

import jsonschema
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from oauth2_provider.models import AccessToken

from aanspraak.models import Client, Consent, Party
from entitlements.models import Entitlement, EntitlementUrlStatus
from entitlements.statuses import DeliveryType, EntitlementStatus, UrlStatus
from tests.support.factories import make_order
from tests.support.seedtables import SEED_002, json_schema, parse_field_table

URL = "/entitlements/deliveryorder/{}"


def body(response) -> object:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return json.loads(content)


def get(client, order_id: str):
    response = client.get(URL.format(order_id))
    return response, body(response)


# --- who sees what -------------------------------------------------------------------------

# Order A: school 110A133 (consent: Portal Zuid, Dashboard West), sent to Portal Zuid.
# Order B: school 220B244 (consent: Portal Klei only), sent to Portal Zuid and Portal Klei.
# Both sold by Boekhandel Oost, product of Uitgeverij Noord, activation codes.
MATRIX = {
    # client:          (order A,          order B,          missing id)
    "oost-seller": ((200, "codes"), (200, "codes"), (404, None)),
    "zee-seller": ((404, None), (404, None), (404, None)),
    "noord-lr": ((200, "codes"), (200, "codes"), (404, None)),
    "berg-lr": ((404, None), (404, None), (404, None)),
    "zuid-portal": ((200, "no codes"), (403, 22), (404, None)),
    "klei-portal": ((404, None), (200, "no codes"), (404, None)),
    # A dashboard has no relation to an order without consent: 404, no existence leak.
    "west-dashboard": ((200, "no codes"), (404, None), (404, None)),
}


@pytest.fixture
def orders(registry):
    a = make_order(
        registry, 3, delivery_order_id="DO-A", delivery_type=DeliveryType.SCHOOL_ACTIVATIONCODES
    )
    b = make_order(
        registry,
        2,
        delivery_order_id="DO-B",
        school=registry.other_school,
        portals=[registry.portal, registry.other_portal],
        delivery_type=DeliveryType.SCHOOL_ACTIVATIONCODES,
    )
    return {"DO-A": a, "DO-B": b}


@pytest.mark.parametrize("client_id", sorted(MATRIX))
@pytest.mark.parametrize("column, order_id", [(0, "DO-A"), (1, "DO-B"), (2, "DO-MISSING")])
def test_visibility_matrix(auth_client, orders, client_id, column, order_id):
    expected_status, detail = MATRIX[client_id][column]
    response, data = get(auth_client(client_id), order_id)
    assert response.status_code == expected_status, data
    assert response["API-Version"]
    if expected_status == 200:
        order = orders[order_id]
        expected_ids = [
            str(e)
            for e in Entitlement.objects.filter(delivery_order=order)
            .order_by("pk")
            .values_list("entitlement_id", flat=True)
        ]
        assert [e["entitlementId"] for e in data] == expected_ids
        codes = [e.get("entitlementSpecification", {}).get("activationCode") for e in data]
        if detail == "codes":
            stored = dict(
                Entitlement.objects.filter(delivery_order=order).values_list(
                    "entitlement_id", "activation_code"
                )
            )
            assert codes == [stored[e.entitlement_id] for e in order.entitlements.order_by("pk")]
        else:
            assert codes == [None] * len(data)
            assert all("activationCode" not in json.dumps(e) for e in data)
            # The school stays: only the code is withheld.
            assert all("school" in e["entitlementSpecification"] for e in data)
    elif expected_status == 403:
        assert data["status"] == detail == 22
        assert "consent" in data["statusMessage"]
    else:
        # An order the caller may not see answers exactly like a missing one.
        party = Client.objects.get(client_id=client_id).party.name
        assert data == {
            "status": 99,
            "statusMessage": f"No delivery order {order_id} is known to {party}.",
        }


@pytest.mark.parametrize("client_id", [*sorted(MATRIX), None])
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "options"])
def test_other_methods_are_405_for_everyone(auth_client, api_client, orders, client_id, method):
    client = auth_client(client_id) if client_id else api_client
    response = getattr(client, method)(URL.format("DO-A"), data={}, format="json")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert response.json() == {
        "status": 99,
        "statusMessage": f"Method {method.upper()} is not allowed on this endpoint.",
    }
    assert response["API-Version"]


def test_head_answers_like_get_without_body(auth_client, orders):
    response = auth_client("oost-seller").head(URL.format("DO-A"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


def test_same_order_id_of_two_sellers_each_sees_its_own(auth_client, registry):
    mine = make_order(registry, 2, delivery_order_id="DO-SAME")
    theirs = make_order(registry, 1, delivery_order_id="DO-SAME", seller=registry.other_seller)
    _, oost = get(auth_client("oost-seller"), "DO-SAME")
    _, zee = get(auth_client("zee-seller"), "DO-SAME")
    _, noord = get(auth_client("noord-lr"), "DO-SAME")
    ids = {
        o: {str(e) for e in o.entitlements.values_list("entitlement_id", flat=True)}
        for o in (mine, theirs)
    }
    assert {e["entitlementId"] for e in oost} == ids[mine]
    assert {e["entitlementId"] for e in zee} == ids[theirs]
    # The registry of the product sees both sellers' orders with that id.
    assert {e["entitlementId"] for e in noord} == ids[mine] | ids[theirs]


def test_licensor_sees_only_orders_of_its_own_products(auth_client, registry):
    make_order(registry, 2, delivery_order_id="DO-P", product=registry.other_product)
    assert get(auth_client("noord-lr"), "DO-P")[0].status_code == 404
    response, data = get(auth_client("berg-lr"), "DO-P")
    assert response.status_code == 200
    assert {e["productId"] for e in data} == {"9789002000010"}


def test_withdrawn_consent_turns_200_into_403(auth_client, registry, orders):
    assert get(auth_client("zuid-portal"), "DO-A")[0].status_code == 200
    Consent.objects.filter(school=registry.school, party=registry.portal).delete()
    response, data = get(auth_client("zuid-portal"), "DO-A")
    assert response.status_code == 403
    assert data["status"] == 22


def test_a_caller_with_several_scopes_sees_the_union(registry, api_client):
    """A party that is both seller and portal: its own order with codes, another seller's
    order of a consenting school without codes, under the same id."""
    combi = Party.objects.create(
        name="Combi", is_seller=True, is_portal=True, portal_id="portal-combi"
    )
    client = Client.objects.create(
        party=combi,
        client_id="combi",
        client_type=Client.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
        allowed_scopes="eduv.entitlement.seller eduv.entitlement.portal",
    )
    Consent.objects.create(school=registry.school, party=combi)
    codes = DeliveryType.SCHOOL_ACTIVATIONCODES
    own = make_order(registry, 2, delivery_order_id="DO-U", seller=combi, delivery_type=codes)
    other = make_order(registry, 1, delivery_order_id="DO-U", delivery_type=codes)
    AccessToken.objects.create(
        application=client,
        token="combi-token",
        scope=client.allowed_scopes,
        expires=timezone.now() + dt.timedelta(hours=1),
    )
    api_client.credentials(HTTP_AUTHORIZATION="Bearer combi-token")
    response, data = get(api_client, "DO-U")
    assert response.status_code == 200
    shown = {e["entitlementId"]: e["entitlementSpecification"].get("activationCode") for e in data}
    expected = {str(e.entitlement_id): e.activation_code for e in own.entitlements.all()}
    expected |= {str(e.entitlement_id): None for e in other.entitlements.all()}
    assert shown == expected
    # Only the seller scope: the other seller's order disappears.
    token = AccessToken.objects.get(token="combi-token")
    token.scope = "eduv.entitlement.seller"
    token.save()
    _, data = get(api_client, "DO-U")
    assert {e["entitlementId"] for e in data} == {
        str(e.entitlement_id) for e in own.entitlements.all()
    }


# --- errors ------------------------------------------------------------------------------


def test_missing_token_is_401_with_bearer_challenge(api_client, orders):
    response = api_client.get(URL.format("DO-A"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["status"] == 99
    assert "token" in response.json()["statusMessage"]


def test_token_without_an_entitlement_scope_is_403_code_21(auth_client, orders):
    response, data = get(auth_client("noord-lr", scope="eduv.usage.licensor"), "DO-A")
    assert response.status_code == 403
    assert data["status"] == 21
    assert "eduv.entitlement.licensor" in data["statusMessage"]


def test_overlong_or_nul_id_is_400(auth_client, registry):
    client = auth_client("oost-seller")
    response, data = get(client, "X" * 201)
    assert response.status_code == 400
    assert data["status"] == 11
    response, data = get(client, "DO%00A")
    assert response.status_code == 400
    assert data["status"] == 11 and data["statusMessage"].startswith("id: ")


@pytest.mark.parametrize("order_id", ["DO\tA", "DO\u00a0A", "DO\x01A", "DO\u200bA"])
def test_any_id_the_intake_takes_can_be_read_back(auth_client, registry, order_id):
    """Found by the fuzzer (tests/fuzz): ids the intake stores (a tab, a no-break space, a
    control or format character) were refused here as "not printable" (400)."""
    from urllib.parse import quote

    from tests.aanspraak.test_openapi import delivery_order_body

    seller = auth_client("oost-seller")
    placed = seller.put("/deliveryorders", delivery_order_body(order_id), format="json")
    assert placed.status_code == 202, placed.content
    response, data = get(seller, quote(order_id))
    assert response.status_code == 200, data
    assert [e["deliveryOrderId"] for e in data] == [order_id]


# --- shape -------------------------------------------------------------------------------

SPEC_SCHEMAS = {
    # entitlementType: (required keys, forbidden keys) of entitlementSpecification, for a
    # seller (codes shown) and for a portal (codes withheld).
    "school-student": ({"school", "user"}, {"activationCode"}),
    "school-employee": ({"school", "user"}, {"activationCode"}),
    "school-activationcode": ({"school", "activationCode"}, {"user"}),
    "customer-student": ({"user"}, {"school", "activationCode"}),
    "customer-activationcode": ({"activationCode"}, {"school", "user"}),
}

DELIVERY_TYPES = {
    "school-student": DeliveryType.SCHOOL_STUDENTS,
    "school-employee": DeliveryType.SCHOOL_EMPLOYEES,
    "school-activationcode": DeliveryType.SCHOOL_ACTIVATIONCODES,
    "customer-student": DeliveryType.CUSTOMER_USER,
    "customer-activationcode": DeliveryType.CUSTOMER_ACTIVATIONCODE,
}


def seed_entitlement_schema(entitlement_type: str, codes_shown: bool) -> dict:
    """Seed 002's Entitlement as a strict JSON Schema, with the hub's entitlementSpecification
    for this type (docs/api.md)."""
    required, forbidden = SPEC_SCHEMAS[entitlement_type]
    if not codes_shown:
        required, forbidden = required - {"activationCode"}, forbidden | {"activationCode"}
    school = {
        "type": "object",
        "properties": {
            "organisationMasterIdentifier": {"type": "string"},
            "organisationIds": {"type": "array"},
        },
        "additionalProperties": False,
    }
    user = {
        "type": "object",
        "properties": {"userMasterIdentifier": {"type": "string"}, "userIds": {"type": "array"}},
        "additionalProperties": False,
        "minProperties": 1,
    }
    properties = {"school": school, "user": user, "activationCode": {"type": "string"}}
    spec = {
        "type": "object",
        "properties": {k: v for k, v in properties.items() if k not in forbidden},
        "required": sorted(required),
        "additionalProperties": False,
    }
    schema = json_schema(
        parse_field_table(SEED_002), "response.200", {"EntitlementSpecification": spec}
    )
    schema["properties"]["entitlementType"]["const"] = entitlement_type
    if required:
        schema["required"] = [*schema["required"], "entitlementSpecification"]
    return {"type": "array", "minItems": 1, "items": schema}


@pytest.mark.parametrize("entitlement_type", sorted(SPEC_SCHEMAS))
@pytest.mark.parametrize("client_id, codes_shown", [("oost-seller", True), ("zuid-portal", False)])
def test_every_entitlement_type_matches_the_seed_schema(
    auth_client, registry, entitlement_type, client_id, codes_shown
):
    order = make_order(registry, 3, delivery_type=DELIVERY_TYPES[entitlement_type])
    response, data = get(auth_client(client_id), order.delivery_order_id)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    jsonschema.validate(data, seed_entitlement_schema(entitlement_type, codes_shown))


def test_fields_values_and_formats(auth_client, registry):
    order = make_order(registry, 2, portals=[registry.portal, registry.other_portal])
    first, second = order.entitlements.order_by("pk")
    # A cancelled entitlement with its endDate; the other portal processed the second one.
    Entitlement.objects.filter(pk=first.pk).update(
        status=EntitlementStatus.CANCELLED, end_date=dt.date(2026, 9, 1)
    )
    EntitlementUrlStatus.objects.filter(entitlement=second, portal=registry.other_portal).update(
        status=UrlStatus.PROCESSED
    )
    stamp = dt.datetime(2026, 8, 2, 9, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    Entitlement.objects.filter(pk=second.pk).update(date_created=stamp, date_last_modified=stamp)
    order.contract_id = None
    order.expiration_date = None
    order.save()

    _, data = get(auth_client("oost-seller"), order.delivery_order_id)
    assert list(data[0]) == [
        "entitlementId",
        "deliveryOrderId",
        "productId",
        "startDate",
        "activationUntilDate",
        "endDate",
        "entitlementType",
        "entitlementSpecification",
        "entitlementStatus",
        "urlStatuses",
        "dateCreated",
        "dateLastModified",
    ]
    assert data[0]["entitlementStatus"] == "cancelled"
    assert data[0]["endDate"] == "2026-09-01"
    assert data[0]["startDate"] == "2026-08-01"
    assert data[0]["activationUntilDate"] == "2026-10-01"
    assert data[0]["entitlementSpecification"] == first.specification
    # No contractId, expirationDate or (for the second) endDate: left out, never null.
    assert "endDate" not in data[1]
    assert all(value is not None for e in data for value in e.values())
    # One urlStatus per portal, ordered by portal id.
    assert data[1]["urlStatuses"] == [
        {"portal": "portal-klei", "urlStatus": "processed"},
        {"portal": "portal-zuid", "urlStatus": "uninitialized"},
    ]
    # Date-times in UTC with Z.
    assert data[1]["dateCreated"] == "2026-08-02T07:30:15Z"
    assert data[1]["dateLastModified"] == "2026-08-02T07:30:15Z"


def test_entitlement_without_url_statuses_leaves_them_out(auth_client, registry):
    order = make_order(registry, 1, portals=[])
    _, data = get(auth_client("oost-seller"), order.delivery_order_id)
    assert "urlStatuses" not in data[0]
    assert data[0]["contractId"] == "C-1"
    assert data[0]["expirationDate"] == "2027-07-31"


# --- performance by design -------------------------------------------------------------


def count_queries(client, order_id: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(URL.format(order_id))
        assert response.status_code == 200
        data = body(response)  # the rows are read while streaming
    return len(ctx.captured_queries), len(data)


def test_constant_number_of_queries_whatever_the_size(auth_client, registry):
    counts = {}
    for n in (1, 100, 5000):
        order = make_order(
            registry,
            n,
            portals=[registry.portal, registry.other_portal],
            with_messages=False,
        )
        counts[n] = count_queries(auth_client("oost-seller"), order.delivery_order_id)
    assert [size for _, size in counts.values()] == [1, 100, 5000]
    assert len({queries for queries, _ in counts.values()}) == 1, counts
    # the token with its client and party (one query: a new token, not yet in the token
    # cache, docs/api.md#authentication), the visible orders, SET LOCAL jit, the
    # entitlements with their URL statuses
    assert counts[1][0] == 4, counts


def test_response_is_streamed(auth_client, registry):
    order = make_order(registry, 1200, with_messages=False)
    response = auth_client("oost-seller").get(URL.format(order.delivery_order_id))
    assert response.streaming
    chunks = list(response.streaming_content)
    # "[" with the first batch of at most 500 entitlements, the other batches, then "]".
    assert chunks[0].startswith(b'[{"entitlementId"') and chunks[-1] == b"]"
    assert len(chunks) == 3 + 1
    assert len(json.loads(b"".join(chunks))) == 1200
