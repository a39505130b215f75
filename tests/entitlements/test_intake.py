"""PUT /deliveryorders: intake of delivery orders (docs/delivery.md)."""

from __future__ import annotations

import copy
import re
import uuid

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from aanspraak.api.authentication import clear_token_cache
from entitlements.intake.contract import CODE_ALPHABET
from entitlements.models import (
    DeliveryOrder,
    DeliveryOrderIntake,
    Entitlement,
    EntitlementUrlStatus,
    OutboundMessage,
)

URL = "/deliveryorders"


def students(n: int, prefix: str = "s") -> list[dict]:
    return [{"userMasterIdentifier": f"https://ketenid.nl/201703/{prefix}{i}"} for i in range(n)]


def order_body(n: int = 3, **order) -> dict:
    body = {
        "deliveryOrderReferenceId": str(uuid.uuid4()),
        "deliveryOrder": {
            "deliveryOrderId": "DO-1",
            "contractId": "C-1",
            "buyer": {"school": {"organisationMasterIdentifier": "110A133"}},
            "productId": "9789001000011",
            "deliveryType": "school-students",
            "deliverySpecification": {"students": students(n)},
            "startDate": "2026-08-01",
            "activationUntilDate": "2026-10-01",
            "expirationDate": "2027-07-31",
            "status": "ordered",
        },
    }
    body["deliveryOrder"].update(order)
    return body


@pytest.fixture
def seller(auth_client):
    return auth_client("oost-seller")


@pytest.fixture
def woken(woken_drains):
    """Drains enqueued after commit, recorded instead of sent to the broker."""
    return woken_drains


def put(client, body):
    return client.put(URL, body, format="json")


def nothing_stored():
    assert DeliveryOrder.objects.count() == 0
    assert DeliveryOrderIntake.objects.count() == 0
    assert Entitlement.objects.count() == 0
    assert OutboundMessage.objects.count() == 0


def test_students_order_is_stored_with_requests_and_confirmation(
    registry, seller, woken, django_capture_on_commit_callbacks
):
    body = order_body(3)
    with django_capture_on_commit_callbacks(execute=True):
        response = put(seller, body)
    assert response.status_code == 202, response.content
    data = response.json()
    assert data["deliveryOrderReferenceId"] == body["deliveryOrderReferenceId"]
    assert data["deliveryOrderId"] == "DO-1"
    assert data["totalQuantity"] == 3 and data["repeated"] is False
    intake = DeliveryOrderIntake.objects.get()
    assert str(intake.receive_id) == data["deliveryOrderReceiveId"]

    order = DeliveryOrder.objects.get()
    assert (order.seller, order.school, order.product) == (
        registry.seller,
        registry.school,
        registry.product,
    )
    assert str(order.start_date) == "2026-08-01" and str(order.expiration_date) == "2027-07-31"
    # No portals listed: the portals the school consented to (Portal Zuid; not the dashboard).
    assert list(order.portals.all()) == [registry.portal]

    entitlements = list(Entitlement.objects.order_by("id"))
    assert [e.status for e in entitlements] == ["created"] * 3
    assert {e.entitlement_type for e in entitlements} == {"school-student"}
    assert entitlements[0].user_master_identifier == "https://ketenid.nl/201703/s0"
    assert entitlements[0].specification == {
        "school": {"organisationMasterIdentifier": "110A133"},
        "user": {"userMasterIdentifier": "https://ketenid.nl/201703/s0"},
    }
    urls = EntitlementUrlStatus.objects.all()
    assert urls.count() == 3 and {u.status for u in urls} == {"uninitialized"}
    assert {u.portal_id for u in urls} == {registry.portal.pk}

    to_licensor = OutboundMessage.objects.filter(recipient=registry.licensor)
    assert to_licensor.count() == 3
    assert {m.proposed_entitlement_status for m in to_licensor} == {"created"}
    to_portal = OutboundMessage.objects.filter(recipient=registry.portal)
    assert to_portal.count() == 3
    assert {m.proposed_url_status for m in to_portal} == {"initialized"}
    confirmation = OutboundMessage.objects.get(recipient=registry.seller)
    assert confirmation.kind == "deliveryorder-confirmation"
    assert confirmation.body["newStatus"] == "processed"
    assert confirmation.body["newTotalQuantity"] == 3
    assert confirmation.body["deliveryOrderReceiveId"] == data["deliveryOrderReceiveId"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", confirmation.body["processedTimestamp"])
    assert {m.state for m in OutboundMessage.objects.all()} == {"pending"}
    # Woken after commit: licensor, portal and seller, each once.
    assert sorted(woken) == sorted([registry.licensor.pk, registry.portal.pk, registry.seller.pk])


def test_explicit_portals_and_school_by_organisation_id(registry, seller, woken):
    body = order_body(
        2,
        buyer={
            "school": {
                "organisationIds": [{"organisationId": "22BB", "organisationIdType": "BP_ID"}]
            }
        },
        portals=["portal-klei"],
    )
    assert put(seller, body).status_code == 202
    order = DeliveryOrder.objects.get()
    assert order.school == registry.other_school
    assert list(order.portals.all()) == [registry.other_portal]
    assert OutboundMessage.objects.filter(recipient=registry.other_portal).count() == 2


@pytest.mark.parametrize(
    ("delivery_type", "spec", "entitlement_type", "count"),
    [
        (
            "school-employees",
            {"employees": [{"userIds": [{"userId": "T1", "userIdType": "NEPPI"}]}]},
            "school-employee",
            1,
        ),
        ("school-activationcodes", {"quantity": 5}, "school-activationcode", 5),
        ("customer-user", {"users": students(2)}, "customer-student", 2),
        ("customer-activationcode", {"quantity": 3}, "customer-activationcode", 3),
        ("customer-activatoncode", {"quantity": 2}, "customer-activationcode", 2),
    ],
)
def test_every_delivery_type(registry, seller, woken, delivery_type, spec, entitlement_type, count):
    body = order_body(deliveryType=delivery_type, deliverySpecification=spec)
    response = put(seller, body)
    assert response.status_code == 202, response.content
    assert DeliveryOrder.objects.get().delivery_type == delivery_type.replace(
        "activaton", "activation"
    )
    entitlements = list(Entitlement.objects.all())
    assert len(entitlements) == count
    assert {e.entitlement_type for e in entitlements} == {entitlement_type}
    if "activationcode" in entitlement_type:
        codes = [e.activation_code for e in entitlements]
        assert len(set(codes)) == count
        for code in codes:
            assert re.fullmatch(rf"[{CODE_ALPHABET}]{{4}}(-[{CODE_ALPHABET}]{{4}}){{3}}", code)
        assert entitlements[0].specification["activationCode"] == entitlements[0].activation_code
    if delivery_type == "school-employees":
        assert entitlements[0].user_ids == [{"userId": "T1", "userIdType": "NEPPI"}]


def without(key):
    def change(body):
        body["deliveryOrder"].pop(key)

    return change


def setting(key, value):
    def change(body):
        body["deliveryOrder"][key] = value

    return change


def spec_students(items):
    return setting("deliverySpecification", {"students": items})


BAD_INPUT = [
    # (id, change, functional code, text the message must contain)
    (
        "no reference id",
        lambda b: b.pop("deliveryOrderReferenceId"),
        11,
        "deliveryOrderReferenceId: is required",
    ),
    ("no order", lambda b: b.pop("deliveryOrder"), 11, "deliveryOrder: is required"),
    ("no order id", without("deliveryOrderId"), 11, "deliveryOrder.deliveryOrderId: is required"),
    ("empty order id", setting("deliveryOrderId", ""), 11, "deliveryOrder.deliveryOrderId"),
    ("no product", without("productId"), 11, "deliveryOrder.productId: is required"),
    (
        "unknown product",
        setting("productId", "000"),
        11,
        "deliveryOrder.productId: unknown product 000",
    ),
    ("no delivery type", without("deliveryType"), 11, "deliveryOrder.deliveryType: is required"),
    (
        "unknown delivery type",
        setting("deliveryType", "school-everyone"),
        11,
        "deliveryOrder.deliveryType: must be one of",
    ),
    ("group type all", setting("deliveryType", "school-all"), 11, "group data"),
    ("group type admin", setting("deliveryType", "school-admin"), 11, "group data"),
    ("group type studies", setting("deliveryType", "school-studies"), 11, "group data"),
    ("group type subjects", setting("deliveryType", "school-subjects"), 11, "group data"),
    ("group type groups", setting("deliveryType", "school-groups"), 11, "group data"),
    ("no buyer", without("buyer"), 11, "deliveryOrder.buyer: is required"),
    ("no school", setting("buyer", {}), 11, "deliveryOrder.buyer.school: is required"),
    ("empty school", setting("buyer", {"school": {}}), 11, "deliveryOrder.buyer.school: needs"),
    (
        "unknown school",
        setting("buyer", {"school": {"organisationMasterIdentifier": "999X"}}),
        23,
        "deliveryOrder.buyer.school: unknown school",
    ),
    (
        "bad organisation id type",
        setting(
            "buyer",
            {"school": {"organisationIds": [{"organisationId": "1", "organisationIdType": "XX"}]}},
        ),
        11,
        "deliveryOrder.buyer.school.organisationIds[0].organisationIdType",
    ),
    ("no start date", without("startDate"), 11, "deliveryOrder.startDate: is required"),
    (
        "no activation date",
        without("activationUntilDate"),
        11,
        "deliveryOrder.activationUntilDate: is required",
    ),
    ("bad date", setting("startDate", "01-08-2026"), 11, "deliveryOrder.startDate: must be a date"),
    (
        "impossible date",
        setting("expirationDate", "2027-02-30"),
        11,
        "deliveryOrder.expirationDate: must be a date",
    ),
    (
        "activation before start",
        setting("activationUntilDate", "2026-07-01"),
        11,
        "deliveryOrder.activationUntilDate: 2026-07-01 is before startDate",
    ),
    (
        "expiry before start",
        setting("expirationDate", "2026-01-01"),
        11,
        "deliveryOrder.expirationDate: 2026-01-01 is before startDate",
    ),
    (
        "expiry before activation end",
        setting("expirationDate", "2026-09-01"),
        11,
        "is before activationUntilDate",
    ),
    (
        "no specification",
        without("deliverySpecification"),
        11,
        "deliveryOrder.deliverySpecification: is required",
    ),
    (
        "no students",
        setting("deliverySpecification", {}),
        11,
        "deliveryOrder.deliverySpecification.students: is required",
    ),
    (
        "empty students",
        spec_students([]),
        11,
        "deliveryOrder.deliverySpecification.students: is required",
    ),
    (
        "missing person",
        spec_students([*students(3), {}]),
        11,
        "deliveryOrder.deliverySpecification.students[3]: missing person",
    ),
    (
        "student not an object",
        spec_students(["x"]),
        11,
        "deliveryOrder.deliverySpecification.students[0]: must be a UserReference",
    ),
    (
        "empty eck id",
        spec_students([{"userMasterIdentifier": ""}]),
        11,
        "students[0].userMasterIdentifier",
    ),
    (
        "bad user id type",
        spec_students([{"userIds": [{"userId": "1", "userIdType": "SSN"}]}]),
        11,
        "students[0].userIds[0].userIdType",
    ),
    (
        "duplicate student",
        spec_students([*students(2), students(1)[0]]),
        11,
        "students[2]: is the same person as deliveryOrder.deliverySpecification.students[0]",
    ),
    (
        "enrollment id with a user too",
        spec_students([{"enrollmentId": "E-1", "userMasterIdentifier": "x"}]),
        11,
        "students[0]: give either enrollmentId alone or a UserReference, not both",
    ),
    (
        "empty enrollment id",
        spec_students([{"enrollmentId": ""}]),
        11,
        "students[0].enrollmentId: must be a non-empty string",
    ),
    (
        "same enrollment twice",
        spec_students([{"enrollmentId": "E-1"}, {"enrollmentId": "E-1"}]),
        11,
        "students[1]: is the same person as deliveryOrder.deliverySpecification.students[0]",
    ),
    (
        "no quantity",
        lambda b: b["deliveryOrder"].update(
            deliveryType="school-activationcodes", deliverySpecification={}
        ),
        11,
        "deliveryOrder.deliverySpecification.quantity: is required",
    ),
    (
        "zero quantity",
        lambda b: b["deliveryOrder"].update(
            deliveryType="school-activationcodes", deliverySpecification={"quantity": 0}
        ),
        11,
        "quantity: must be between 1 and 100000",
    ),
    (
        "too many codes",
        lambda b: b["deliveryOrder"].update(
            deliveryType="customer-activationcode", deliverySpecification={"quantity": 100_001}
        ),
        11,
        "quantity: must be between 1 and 100000",
    ),
    (
        "quantity as text",
        lambda b: b["deliveryOrder"].update(
            deliveryType="school-activationcodes", deliverySpecification={"quantity": "5"}
        ),
        11,
        "quantity: is required: a whole number",
    ),
    (
        "portals not a list",
        setting("portals", "portal-zuid"),
        11,
        "deliveryOrder.portals: must be a list",
    ),
    (
        "portal twice",
        setting("portals", ["portal-zuid", "portal-zuid"]),
        11,
        "deliveryOrder.portals: lists a portal twice",
    ),
    (
        "unknown portal",
        setting("portals", ["portal-zuid", "portal-nowhere"]),
        23,
        "deliveryOrder.portals[1]: unknown portal portal-nowhere",
    ),
    (
        "portal without consent",
        setting("portals", ["portal-klei"]),
        22,
        "deliveryOrder.portals[0]: the school has not consented",
    ),
    (
        "bad status",
        setting("status", "shipped"),
        11,
        "deliveryOrder.status: must be one of ordered, cancelled",
    ),
    (
        "cancel without end date",
        setting("status", "cancelled"),
        11,
        "deliveryOrder.endDate: is required",
    ),
]


@pytest.mark.parametrize(
    ("change", "code", "text"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT]
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(
    registry, seller, change, code, text
):
    body = order_body(3)
    change(body)
    response = put(seller, body)
    assert response.status_code == 400, response.content
    data = response.json()
    assert data["status"] == code
    assert text in data["statusMessage"]
    nothing_stored()


def test_body_not_an_object(registry, seller):
    response = put(seller, ["not", "an", "object"])
    assert response.status_code == 400
    assert response.json()["status"] == 11
    nothing_stored()


def test_too_many_students(registry, seller):
    body = order_body(100_001)
    response = put(seller, body)
    assert response.status_code == 400
    assert "students: has 100001 entries; at most 100000" in response.json()["statusMessage"]
    nothing_stored()


def test_many_problems_are_reported_together_but_capped(registry, seller):
    body = order_body(0)
    body["deliveryOrder"]["deliverySpecification"] = {"students": [{}] * 40}
    message = put(seller, body).json()["statusMessage"]
    assert "students[0]: missing person" in message and "students[9]: missing person" in message
    assert "more problems" in message
    assert len(message) < 2000


def test_other_scopes_are_refused(registry, auth_client):
    response = put(auth_client("noord-lr"), order_body())
    assert response.status_code == 403
    assert response.json()["status"] == 21
    nothing_stored()


def test_no_token_is_401(registry, api_client):
    assert put(api_client, order_body()).status_code == 401
    nothing_stored()


def test_repeated_reference_id_is_not_processed_again_and_confirmation_is_resent(
    registry, seller, woken
):
    body = order_body(3)
    first = put(seller, body).json()
    again = put(seller, body)
    assert again.status_code == 202
    data = again.json()
    assert data["repeated"] is True
    assert data["deliveryOrderReceiveId"] == first["deliveryOrderReceiveId"]
    assert data["totalQuantity"] == 3
    assert DeliveryOrder.objects.count() == 1 and Entitlement.objects.count() == 3
    assert DeliveryOrderIntake.objects.count() == 1
    confirmations = list(
        OutboundMessage.objects.filter(kind="deliveryorder-confirmation").order_by("id")
    )
    assert len(confirmations) == 2
    assert confirmations[0].body == confirmations[1].body
    assert OutboundMessage.objects.filter(kind="entitlement-request").count() == 6


def test_repeated_reference_id_from_another_seller_is_a_different_message(
    registry, seller, auth_client, woken
):
    body = order_body(2)
    assert put(seller, body).status_code == 202
    assert put(auth_client("zee-seller"), body).json()["repeated"] is False
    assert DeliveryOrder.objects.count() == 2


def test_same_order_with_new_reference_unchanged_is_confirmed_again(registry, seller, woken):
    body = order_body(3)
    put(seller, body)
    again = copy.deepcopy(body)
    again["deliveryOrderReferenceId"] = "another-reference"
    response = put(seller, again)
    assert response.status_code == 202
    assert response.json()["repeated"] is True
    assert Entitlement.objects.count() == 3
    assert DeliveryOrderIntake.objects.count() == 2
    assert OutboundMessage.objects.filter(kind="deliveryorder-confirmation").count() == 2


def test_same_order_with_new_reference_and_changes_is_refused(registry, seller, woken):
    body = order_body(3)
    put(seller, body)
    changed = order_body(4)
    response = put(seller, changed)
    assert response.status_code == 400
    assert "DO-1 already exists with different content" in response.json()["statusMessage"]
    assert Entitlement.objects.count() == 3
    assert DeliveryOrderIntake.objects.count() == 1


def cancel_body(order_id="DO-1", end="2026-12-31", **extra):
    return {
        "deliveryOrderReferenceId": str(uuid.uuid4()),
        "deliveryOrder": {
            "deliveryOrderId": order_id,
            "status": "cancelled",
            "endDate": end,
            **extra,
        },
    }


def test_cancellation_of_a_half_licensed_order(
    registry, seller, woken, django_capture_on_commit_callbacks
):
    put(seller, order_body(4))
    ids = list(Entitlement.objects.order_by("id").values_list("id", flat=True))
    Entitlement.objects.filter(id__in=ids[:2]).update(status="licensed")
    Entitlement.objects.filter(id=ids[2]).update(status="entitled")
    woken.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = put(seller, cancel_body())
    assert response.status_code == 202, response.content
    data = response.json()
    assert data["action"] == "cancel"
    assert data["cancelledQuantity"] == 2 and data["licensedQuantity"] == 2

    order = DeliveryOrder.objects.get()
    assert order.status == "cancelled" and str(order.end_date) == "2026-12-31"
    proposals = OutboundMessage.objects.filter(kind="entitlement-request").filter(
        Q(proposed_entitlement_status="cancelled") | Q(proposed_url_status="cancelled")
    )
    # Requests carry no order or intake link (only seller confirmations do: F12).
    assert not OutboundMessage.objects.filter(
        Q(delivery_order__isnull=False) | Q(intake__isnull=False), kind="entitlement-request"
    ).exists()
    to_licensor = proposals.filter(recipient=registry.licensor)
    assert sorted(to_licensor.values_list("entitlement_id", flat=True)) == ids[2:]
    assert {(m.proposed_entitlement_status, str(m.proposed_end_date)) for m in to_licensor} == {
        ("cancelled", "2026-12-31")
    }
    to_portal = proposals.filter(recipient=registry.portal)
    assert sorted(to_portal.values_list("entitlement_id", flat=True)) == ids[2:]
    assert {m.proposed_url_status for m in to_portal} == {"cancelled"}
    # The statuses change only when the registry and portal confirm.
    assert sorted(Entitlement.objects.values_list("status", flat=True)) == [
        "created",
        "entitled",
        "licensed",
        "licensed",
    ]
    confirmation = OutboundMessage.objects.filter(kind="deliveryorder-confirmation").latest("id")
    assert confirmation.body["newStatus"] == "cancelled"
    assert confirmation.body["newTotalQuantity"] == 2
    assert confirmation.body["cancelledQuantity"] == 2
    assert confirmation.body["licensedQuantity"] == 2
    assert "2 already licensed and not cancelled" in confirmation.body["statusMessage"]
    assert set(woken) == {registry.licensor.pk, registry.portal.pk, registry.seller.pk}

    # Cancelling again (new reference) proposes nothing new and repeats the first outcome.
    again = put(seller, cancel_body()).json()
    assert again["cancelledQuantity"] == 2 and again["licensedQuantity"] == 2
    assert again["repeated"] is True
    assert proposals.count() == 4
    second = OutboundMessage.objects.filter(kind="deliveryorder-confirmation").latest("id")
    assert second.pk != confirmation.pk
    assert second.body["deliveryOrderReferenceId"] == again["deliveryOrderReferenceId"]
    assert second.body["deliveryOrderReceiveId"] == again["deliveryOrderReceiveId"]
    same = ("deliveryOrderReferenceId", "deliveryOrderReceiveId")
    assert {k: v for k, v in second.body.items() if k not in same} == {
        k: v for k, v in confirmation.body.items() if k not in same
    }


def test_repeated_cancel_of_a_fully_licensed_order_still_says_cancelled(registry, seller, woken):
    """F14: a second cancel (new reference) after some entitlements became licensed reports
    what the first cancellation reported, not "licensed"."""
    put(seller, order_body(2))
    first = put(seller, cancel_body()).json()
    assert first["cancelledQuantity"] == 2
    Entitlement.objects.update(status="licensed")  # e.g. activated before the cancel landed
    again = put(seller, cancel_body()).json()
    assert (again["cancelledQuantity"], again["licensedQuantity"]) == (2, 0)
    bodies = [
        m.body
        for m in OutboundMessage.objects.filter(kind="deliveryorder-confirmation").order_by("id")
    ]
    assert [b["newStatus"] for b in bodies] == ["processed", "cancelled", "cancelled"]
    assert bodies[1]["statusMessage"] == bodies[2]["statusMessage"]


def test_cancellation_of_a_fully_licensed_order_says_licensed(registry, seller, woken):
    put(seller, order_body(2))
    Entitlement.objects.update(status="licensed")
    put(seller, cancel_body())
    body = OutboundMessage.objects.filter(kind="deliveryorder-confirmation").latest("id").body
    assert body["newStatus"] == "licensed" and body["cancelledQuantity"] == 0


def test_cancellation_of_unknown_or_other_sellers_order(registry, seller, auth_client, woken):
    put(seller, order_body(2))
    response = put(auth_client("zee-seller"), cancel_body())
    assert response.status_code == 400
    assert "no delivery order DO-1 of this seller" in response.json()["statusMessage"]
    assert DeliveryOrder.objects.get().status == "ordered"
    mismatch = put(seller, cancel_body(productId="9789002000010"))
    assert mismatch.status_code == 400
    assert "deliveryOrder.productId" in mismatch.json()["statusMessage"]
    assert DeliveryOrder.objects.get().status == "ordered"


def test_number_of_queries_does_not_grow_with_the_order(registry, seller, woken):
    counts = []
    for n, order_id in ((5, "DO-small"), (200, "DO-large")):
        body = order_body(n, deliveryOrderId=order_id)
        body["deliveryOrder"]["deliverySpecification"]["students"] = students(n, order_id)
        clear_token_cache()  # both requests look their token up (docs/api.md#authentication)
        with CaptureQueriesContext(connection) as ctx:
            assert put(seller, body).status_code == 202
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]
    assert Entitlement.objects.count() == 205


# --- one contract for the parser and the OpenAPI document -------------------------------------


def _openapi_property(schema: dict, components: dict, name: str) -> dict:
    """The first property ``name`` found anywhere under ``schema`` (following $ref)."""
    stack, seen = [schema], set()
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref and ref not in seen:
                seen.add(ref)
                stack.append(components[ref.rsplit("/", 1)[-1]])
            if name in node.get("properties", {}):
                return node["properties"][name]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    raise KeyError(name)


@pytest.mark.parametrize(
    ("field", "where"),
    [
        ("deliveryOrderReferenceId", "body"),
        ("deliveryOrderId", "deliveryOrder"),
        ("productId", "deliveryOrder"),
        ("contractId", "deliveryOrder"),
    ],
)
def test_the_parser_and_the_openapi_document_share_the_length_limits(
    registry, seller, field, where
):
    """Both read ``entitlements/intake/contract.py``: the document says the limit, and the
    parser refuses one character more and takes exactly the limit."""
    import yaml
    from django.conf import settings as django_settings

    from entitlements.intake.contract import MAX_ID_LENGTH

    document = yaml.safe_load((django_settings.BASE_DIR / "docs" / "openapi.yaml").read_text())
    body_schema = document["paths"]["/deliveryorders"]["put"]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    prop = _openapi_property(body_schema, document["components"]["schemas"], field)
    assert prop["maxLength"] == MAX_ID_LENGTH

    def with_value(value: str) -> dict:
        body = order_body(1)
        (body if where == "body" else body["deliveryOrder"])[field] = value
        return body

    too_long = put(seller, with_value("x" * (MAX_ID_LENGTH + 1)))
    assert too_long.status_code == 400
    assert field in too_long.json()["statusMessage"]
    nothing_stored()
    if field != "productId":  # a productId of 200 x's names no product of the registry
        assert put(seller, with_value("x" * MAX_ID_LENGTH)).status_code == 202


def test_the_parser_and_the_openapi_document_share_the_quantity_limit():
    import yaml
    from django.conf import settings as django_settings

    from entitlements.intake.contract import MAX_ENTITLEMENTS

    text = (django_settings.BASE_DIR / "docs" / "openapi.yaml").read_text()
    document = yaml.safe_load(text)
    prop = _openapi_property(document, document["components"]["schemas"], "quantity")
    assert prop["maximum"] == MAX_ENTITLEMENTS


@pytest.mark.parametrize(
    ("where", "path"),
    [
        (
            lambda b: b["deliveryOrder"].__setitem__("contractId", "C-\x001"),
            "deliveryOrder.contractId",
        ),
        (
            lambda b: b["deliveryOrder"]["deliverySpecification"]["students"][1].__setitem__(
                "userMasterIdentifier", "https://ketenid.nl/201703/\x00"
            ),
            "deliveryOrder.deliverySpecification.students[1].userMasterIdentifier",
        ),
        (lambda b: b["deliveryOrder"].__setitem__("note\x00", "x"), "deliveryOrder (a key)"),
    ],
)
def test_a_nul_character_anywhere_is_a_400_naming_it_and_stores_nothing(
    registry, seller, where, path
):
    """PostgreSQL cannot store NUL in text or jsonb; it used to answer 500 from the insert."""
    body = order_body(2)
    where(body)
    response = put(seller, body)
    assert response.status_code == 400, response.content
    assert response.json()["status"] == 11
    assert f"{path}: must not contain a NUL character" in response.json()["statusMessage"]
    nothing_stored()
