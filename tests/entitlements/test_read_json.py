"""The read API's JSON as PostgreSQL writes it (``entitlement_json``) against the documents
the Python builder writes (``entitlement_documents``, the embedded SQLite's path): the same
values, key order and formats for every kind of entitlement, and a query that an index on the
URL status's entitlement serves."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import pytest
from django.db import connection

from aanspraak.models import Consent, Party
from entitlements.models import DeliveryOrder, Entitlement, EntitlementUrlStatus
from entitlements.selectors.deliveryorders import (
    _ENTITLEMENT_JSON_SQL,
    CHUNK_SIZE,
    entitlement_documents,
    entitlement_json,
    visible_orders,
)
from entitlements.statuses import DeliveryType, EntitlementStatus, UrlStatus
from tests.support.factories import make_order
from tests.support.processes import ROOT

SELLER = frozenset({"eduv.entitlement.seller"})
PORTAL = frozenset({"eduv.entitlement.portal"})


def from_database(party, scopes, order_id: str) -> list[str]:
    orders = visible_orders(party, scopes, order_id)
    return [text for chunk in entitlement_json(orders) for text in chunk]


def from_python(party, scopes, order_id: str) -> list[dict]:
    return list(entitlement_documents(visible_orders(party, scopes, order_id)))


def assert_same(texts: list[str], documents: list[dict]) -> None:
    """Equal values, and equal key order at every level (json.dumps keeps the order)."""
    parsed = [json.loads(text) for text in texts]
    assert parsed == documents
    assert [json.dumps(p) for p in parsed] == [json.dumps(d) for d in documents]


@pytest.fixture
def varied_order(registry):
    """One order of every shape a field can take: several portals (one URL status missing),
    an ended entitlement, no contractId or expirationDate, sub-second date-times off UTC, an
    emptied and a nested specification, characters that JSON must escape."""
    order = make_order(
        registry,
        5,
        delivery_order_id='DO-"ü\\/\t"',
        portals=[registry.portal, registry.other_portal],
        with_messages=False,
    )
    order.contract_id = None
    order.expiration_date = None
    order.save()
    first, second, third, fourth, fifth = order.entitlements.order_by("pk")
    Entitlement.objects.filter(pk=first.pk).update(
        status=EntitlementStatus.CANCELLED, end_date=dt.date(2026, 9, 1)
    )
    stamp = dt.datetime(2026, 8, 2, 9, 30, 15, 999999, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    Entitlement.objects.filter(pk=second.pk).update(
        date_created=stamp, date_last_modified=stamp + dt.timedelta(days=40)
    )
    Entitlement.objects.filter(pk=third.pk).update(specification={})
    Entitlement.objects.filter(pk=fourth.pk).update(
        specification={
            "school": {"organisationMasterIdentifier": "110A133", "organisationIds": []},
            "user": {
                "userMasterIdentifier": "https://ketenid.nl/201703/ä\u2028\"'",
                "userIds": [{"userId": "42", "userIdType": "nummer", "extra": None}, 7, 1.5],
            },
        }
    )
    EntitlementUrlStatus.objects.filter(entitlement=fifth, portal=registry.portal).delete()
    EntitlementUrlStatus.objects.filter(entitlement=second, portal=registry.other_portal).update(
        status=UrlStatus.PROCESSED
    )
    return order


def test_every_field_shape_matches_the_python_builder(registry, varied_order):
    texts = from_database(registry.seller, SELLER, varied_order.delivery_order_id)
    documents = from_python(registry.seller, SELLER, varied_order.delivery_order_id)
    assert len(texts) == 5
    assert_same(texts, documents)
    first, second, third, fourth, fifth = (json.loads(text) for text in texts)
    # Spot checks against the seed's rules, not only against the other builder.
    assert first["endDate"] == "2026-09-01" and "endDate" not in second
    assert "contractId" not in first and "expirationDate" not in first
    assert second["dateCreated"] == "2026-08-02T07:30:15Z"
    assert second["dateLastModified"] == "2026-09-11T07:30:15Z"
    assert second["urlStatuses"] == [
        {"portal": "portal-klei", "urlStatus": "processed"},
        {"portal": "portal-zuid", "urlStatus": "uninitialized"},
    ]
    assert "entitlementSpecification" not in third
    assert fourth["entitlementSpecification"]["user"]["userIds"][0]["extra"] is None
    assert fifth["urlStatuses"] == [{"portal": "portal-klei", "urlStatus": "uninitialized"}]
    assert first["deliveryOrderId"] == 'DO-"ü\\/\t"'


def test_no_url_statuses_leaves_the_key_out(registry):
    order = make_order(registry, 2, portals=[], with_messages=False)
    texts = from_database(registry.seller, SELLER, order.delivery_order_id)
    assert_same(texts, from_python(registry.seller, SELLER, order.delivery_order_id))
    assert all("urlStatuses" not in json.loads(text) for text in texts)
    assert json.loads(texts[0])["contractId"] == "C-1"


@pytest.mark.parametrize("delivery_type", sorted(DeliveryType.values))
@pytest.mark.parametrize("scopes", [SELLER, PORTAL], ids=["seller", "portal"])
def test_every_entitlement_type_and_activation_codes(registry, delivery_type, scopes):
    order = make_order(registry, 3, delivery_type=delivery_type, with_messages=False)
    party = registry.seller if scopes == SELLER else registry.portal
    texts = from_database(party, scopes, order.delivery_order_id)
    documents = from_python(party, scopes, order.delivery_order_id)
    assert len(texts) == 3
    assert_same(texts, documents)
    codes = [json.loads(t).get("entitlementSpecification", {}).get("activationCode") for t in texts]
    stored = list(order.entitlements.order_by("pk").values_list("activation_code", flat=True))
    assert codes == (stored if scopes == SELLER else [None, None, None])


def test_customer_activation_code_hidden_leaves_the_specification_out(registry):
    order = make_order(
        registry, 2, delivery_type=DeliveryType.CUSTOMER_ACTIVATIONCODE, with_messages=False
    )
    # Only a licensor or seller sees the code; an order seen through consent shows no
    # specification at all for this type (the code was its only key).
    texts = from_database(registry.portal, PORTAL, order.delivery_order_id)
    assert all("entitlementSpecification" not in json.loads(t) for t in texts)


def test_several_orders_under_one_id_each_with_its_fields_and_codes(registry):
    """A caller that sees two orders with one id: each entitlement carries its own order's
    fields, codes shown per order (docs/api.md: the union of the scopes)."""
    combi = Party.objects.create(
        name="Combi", is_seller=True, is_portal=True, portal_id="portal-combi"
    )
    Consent.objects.create(school=registry.school, party=combi)
    codes = DeliveryType.SCHOOL_ACTIVATIONCODES
    own = make_order(registry, 2, delivery_order_id="DO-U", seller=combi, delivery_type=codes)
    other = make_order(registry, 3, delivery_order_id="DO-U", delivery_type=codes)
    DeliveryOrder.objects.filter(pk=other.pk).update(contract_id=None)
    scopes = SELLER | PORTAL
    texts = from_database(combi, scopes, "DO-U")
    assert_same(texts, from_python(combi, scopes, "DO-U"))
    parsed = [json.loads(t) for t in texts]
    assert [
        ("contractId" in p, "activationCode" in p["entitlementSpecification"]) for p in parsed
    ] == [(True, True)] * 2 + [(False, False)] * 3
    assert [p["entitlementId"] for p in parsed] == [
        str(e)
        for o in (own, other)
        for e in o.entitlements.order_by("pk").values_list("entitlement_id", flat=True)
    ]


def test_chunks_of_at_most_chunk_size(registry):
    order = make_order(registry, CHUNK_SIZE + 1, with_messages=False)
    chunks = list(
        entitlement_json(visible_orders(registry.seller, SELLER, order.delivery_order_id))
    )
    assert [len(c) for c in chunks] == [CHUNK_SIZE, 1]


def test_the_url_statuses_are_read_through_the_index_on_their_entitlement(registry):
    """Only the order's URL statuses are read: the query can be served by an index led by
    the URL status's entitlement (urlstatus_unique), never only by a scan of the table."""
    order = make_order(registry, 3, with_messages=False)
    heads = ['"deliveryOrderId":"x"']
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + _ENTITLEMENT_JSON_SQL, [[order.pk], heads, [True]])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    table = EntitlementUrlStatus._meta.db_table
    # A (bitmap) index scan of urlstatus_unique per entitlement, keyed by the entitlement.
    assert "Index Scan on urlstatus_unique" in plan or "using urlstatus_unique" in plan, plan
    assert "Index Cond: (entitlement_id = e.id)" in plan, plan
    assert f"Seq Scan on {table}" not in plan, plan


@pytest.mark.django_db(transaction=True)
def test_an_answer_closed_early_ends_its_query_and_transaction(registry, make_token):
    """A client that goes away mid-answer: the streamed query is stopped and its transaction
    ended at once, and the connection serves the next request."""
    from rest_framework.test import APIClient

    order = make_order(registry, 3 * CHUNK_SIZE, with_messages=False)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token('oost-seller')}")
    response = client.get(f"/entitlements/deliveryorder/{order.delivery_order_id}")
    chunks = iter(response.streaming_content)
    assert next(chunks).startswith(b'[{"entitlementId"')
    assert next(chunks).startswith(b',{"entitlementId"')
    assert connection.in_atomic_block  # the query is being read
    response.close()
    assert not connection.in_atomic_block and connection.get_autocommit()
    assert Entitlement.objects.filter(delivery_order=order).count() == 3 * CHUNK_SIZE


@pytest.mark.django_db(transaction=True)
def test_a_database_gone_when_the_query_starts_is_a_503_not_a_broken_200(
    registry, make_token, monkeypatch
):
    """The streamed query runs, and its first chunk is read, inside the view: a database
    stopped between the order's lookup and the query answers the 503 StatusResponse, not a
    200 whose body breaks off (docs/api.md, "Errors")."""
    from django.db import OperationalError
    from rest_framework.test import APIClient

    order = make_order(registry, 3, with_messages=False)

    def gone(*args, **kwargs):
        raise OperationalError("terminating connection due to administrator command")
        yield  # a generator, like the real one

    monkeypatch.setattr("entitlements.selectors.deliveryorders._stream", gone)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token('oost-seller')}")
    response = client.get(f"/entitlements/deliveryorder/{order.delivery_order_id}")
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.json()["status"] == 99
    assert not connection.in_atomic_block  # the query's transaction was ended


@pytest.mark.django_db
def test_an_order_without_entitlements_is_an_empty_array(registry, make_token):
    from rest_framework.test import APIClient

    order = make_order(registry, 0, with_messages=False)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token('oost-seller')}")
    response = client.get(f"/entitlements/deliveryorder/{order.delivery_order_id}")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"[]"


SQLITE_SCRIPT = """
import datetime as dt, json
from django.test import Client as HttpClient
from django.utils import timezone
from oauth2_provider.models import AccessToken
from aanspraak.models import Client, Party
from aanspraak.services.registry import load_registry, read_registry_file
from entitlements.intake import receive_delivery_order
load_registry(read_registry_file("aanspraak/simulation/demo-registry.yaml"))
seller = Party.objects.get(name="Demo Boekhandel")
students = [{"userMasterIdentifier": f"https://ketenid.nl/201703/{i}"} for i in range(3)]
receive_delivery_order(seller, {"deliveryOrderReferenceId": "r1", "deliveryOrder": {
    "deliveryOrderId": "DO-lite", "productId": "9789001000011",
    "buyer": {"school": {"organisationMasterIdentifier": "110A133"}},
    "startDate": "2026-08-01", "activationUntilDate": "2026-10-01",
    "deliveryType": "school-students", "deliverySpecification": {"students": students}}})
client = Client.objects.get(client_id="demo-seller")
AccessToken.objects.create(application=client, token="lite", scope=client.allowed_scopes,
                           expires=timezone.now() + dt.timedelta(hours=1))
response = HttpClient().get("/entitlements/deliveryorder/DO-lite", HTTP_AUTHORIZATION="Bearer lite")
data = json.loads(b"".join(response.streaming_content))
print(json.dumps({"status": response.status_code, "data": data}))
"""


def test_read_api_on_sqlite(tmp_path):
    """The embedded default serves the same API through the Python builder."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env["HUB_DATA_DIR"] = str(tmp_path / "data")
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)
    out = subprocess.run(
        [*manage, "shell", "-c", SQLITE_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == 200
    data = result["data"]
    assert [e["entitlementSpecification"]["user"]["userMasterIdentifier"] for e in data] == [
        f"https://ketenid.nl/201703/{i}" for i in range(3)
    ]
    assert list(data[0])[:2] == ["entitlementId", "deliveryOrderId"]
    assert all(e["dateCreated"].endswith("Z") and "urlStatuses" in e for e in data)
