"""The support search (entitlements/selectors/search.py) and the big changelists: each kind
of term finds its entitlement and only it, with a bounded number of queries; the queries
use indexes; changelists do not query per row and never count a whole table."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aanspraak.admin_paging import EstimatedCountPaginator
from aanspraak.models import SchoolOrganisationId
from confirmations.models import Confirmation
from entitlements.models import (
    DeliveryAttempt,
    DeliveryOrder,
    Entitlement,
    OutboundMessage,
    StatusEvent,
)
from entitlements.selectors.search import Shape, find_entitlements, shape_of
from entitlements.statuses import DeliveryType
from tests.support.factories import make_order

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/entitlements/entitlement/"


def confirm(registry, entitlement, receive_id, *, resolved=True, kind="confirmation"):
    """A stored confirmation (or activation) about ``entitlement``."""
    return Confirmation.objects.create(
        sender=registry.licensor,
        kind=kind,
        receive_id=receive_id,
        reference_id="",
        entitlement_ref=str(entitlement.entitlement_id),
        product_id=entitlement.delivery_order.product.product_id,
        processed_timestamp=timezone.now(),
        new_entitlement_status="entitled",
        body={},
        entitlement=entitlement if resolved else None,
        state="applied" if resolved else "pending",
    )


@pytest.fixture
def world(registry):
    """Three orders of different schools, products and sellers, and one entitlement of each
    kind of search to find."""
    students = make_order(registry, 4, delivery_order_id="DO-STUDENTS")
    codes = make_order(
        registry,
        3,
        delivery_order_id="DO-CODES",
        delivery_type=DeliveryType.SCHOOL_ACTIVATIONCODES,
        school=registry.other_school,
        portals=[registry.other_portal],
    )
    other = make_order(
        registry,
        2,
        delivery_order_id="DO-OTHER",
        seller=registry.other_seller,
        product=registry.other_product,
        school=registry.other_school,
    )
    people = list(students.entitlements.order_by("id"))
    Entitlement.objects.filter(pk=people[1].pk).update(
        user_ids=[{"userId": "NEPPI-777", "userIdType": "NEPPI"}]
    )
    Entitlement.objects.filter(pk=people[2].pk).update(enrollment_id="ENR-42")
    confirm(registry, people[3], "RCV-RESOLVED")
    confirm(registry, people[0], "ACT-PENDING", resolved=False, kind="activation")
    return {
        "students": students,
        "codes": codes,
        "other": other,
        "people": people,
        "code": codes.entitlements.order_by("id").first(),
    }


def pks(qs) -> set[int]:
    return set(qs.values_list("pk", flat=True))


def found(term: str) -> set[int]:
    return pks(Entitlement.objects.filter(find_entitlements(term).as_q()))


def test_shapes():
    assert shape_of(str(uuid.uuid4())) is Shape.UUID
    assert shape_of(uuid.uuid4().hex) is Shape.UUID
    assert shape_of("https://ketenid.nl/201703/abc") is Shape.URL
    assert shape_of("DO-1") is Shape.TEXT
    assert shape_of("{12345678-1234-5678-1234-567812345678}") is Shape.TEXT


def test_each_kind_of_term_finds_its_entitlements_only(world, registry):
    people, code = world["people"], world["code"]
    message = OutboundMessage.objects.filter(entitlement=people[2]).first()
    cases = {
        "ECK iD": (people[0].user_master_identifier, {people[0].pk}),
        "userId": ("NEPPI-777", {people[1].pk}),
        "enrollmentId": ("ENR-42", {people[2].pk}),
        "activation code": (code.activation_code, {code.pk}),
        "entitlementId": (str(people[3].entitlement_id), {people[3].pk}),
        "entitlementId without hyphens": (people[3].entitlement_id.hex, {people[3].pk}),
        "entitlementReferenceId": (str(message.reference_id), {people[2].pk}),
        "receive id (resolved)": ("RCV-RESOLVED", {people[3].pk}),
        "receive id (pending, by the entitlementId it names)": ("ACT-PENDING", {people[0].pk}),
        "deliveryOrderId": ("DO-CODES", pks(world["codes"].entitlements)),
        "productId": (registry.other_product.product_id, pks(world["other"].entitlements)),
        "school master id": (
            registry.school.organisation_master_identifier,
            pks(world["students"].entitlements),
        ),
        "school organisation id": (
            "22BB",
            pks(world["codes"].entitlements) | pks(world["other"].entitlements),
        ),
    }
    for kind, (term, expected) in cases.items():
        assert found(term) == expected, kind
    # Several terms: the union.
    assert found(f"ENR-42 {code.activation_code}") == {people[2].pk, code.pk}
    # Whole values only: a part of an ECK iD or an order id finds nothing.
    assert found("ketenid") == set()
    assert found("DO-") == set()
    assert found("   ") == set()


def test_the_changelist_lists_what_the_search_finds(world, admin_client):
    people = world["people"]
    page = admin_client.get(CHANGELIST, {"q": "ENR-42"}).content.decode()
    assert str(people[2].entitlement_id) in page
    for other in (*people[:2], people[3]):
        assert str(other.entitlement_id) not in page
    assert "1 result" in page


def test_a_search_takes_a_bounded_number_of_queries_whatever_the_terms(world, registry):
    people = world["people"]
    one = [people[0].user_master_identifier, str(people[3].entitlement_id), "DO-CODES"]
    many = [
        *(p.user_master_identifier for p in people),
        *(str(p.entitlement_id) for p in people),
        "DO-CODES",
        "DO-OTHER",
        "ENR-42",
        "NEPPI-777",
        "RCV-RESOLVED",
    ]
    counts = []
    for terms in (one, many):
        with CaptureQueriesContext(connection) as queries:
            find_entitlements(" ".join(terms))
        counts.append(len(queries))
    # The pending confirmation's extra query is not needed by either (both resolved).
    assert counts[0] == counts[1]
    assert counts[1] <= 12


def _plan_nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


BIG_TABLES = {
    "entitlements_entitlement",
    "entitlements_outboundmessage",
    "entitlements_deliveryorder",
    "confirmations_confirmation",
}


def test_every_search_query_reads_indexes(registry):
    """On tables large enough for the planner to prefer an index when one fits, every query
    of every kind of search (and the changelist's own) reads an index of the big tables,
    never all of their rows."""
    make_order(registry, 4000, delivery_order_id="DO-BIG")
    codes = make_order(
        registry, 50, delivery_order_id="DO-C", delivery_type=DeliveryType.SCHOOL_ACTIVATIONCODES
    )
    DeliveryOrder.objects.bulk_create(
        DeliveryOrder(
            seller=registry.other_seller,
            delivery_order_id=f"DO-FILL-{i}",
            school=registry.other_school,
            product=registry.other_product,
            delivery_type=DeliveryType.SCHOOL_STUDENTS,
            start_date=dt.date(2026, 8, 1),
            activation_until_date=dt.date(2026, 10, 1),
        )
        for i in range(3000)
    )
    # (The filler orders are the other school's: the school looked up is a selective one.)
    SchoolOrganisationId.objects.create(
        school=registry.school, organisation_id="OIE-1", organisation_id_type="OIE_CODE"
    )
    some = list(Entitlement.objects.order_by("id")[:3])
    Entitlement.objects.filter(pk=some[0].pk).update(
        user_ids=[{"userId": "NEPPI-1", "userIdType": "NEPPI"}]
    )
    Entitlement.objects.filter(pk=some[1].pk).update(enrollment_id="ENR-1")
    Confirmation.objects.bulk_create(
        Confirmation(
            sender=registry.licensor,
            receive_id=f"RCV-{i}",
            entitlement_ref=str(some[2].entitlement_id),
            product_id="x",
            processed_timestamp=timezone.now(),
            new_entitlement_status="entitled",
            body={},
            entitlement=some[2],
        )
        for i in range(4000)
    )
    with connection.cursor() as cursor:
        for table in (*BIG_TABLES, "aanspraak_school", "aanspraak_product"):
            cursor.execute(f"ANALYZE {table}")
    message = OutboundMessage.objects.filter(entitlement=some[2]).first()
    terms = [
        some[0].user_master_identifier,
        "NEPPI-1",
        "ENR-1",
        codes.entitlements.first().activation_code,
        str(some[2].entitlement_id),
        str(message.reference_id),
        "RCV-17",
        "DO-BIG",
        registry.product.product_id,
        registry.school.organisation_master_identifier,
        "OIE-1",
    ]
    for term in terms:
        with CaptureQueriesContext(connection) as queries:
            hits = find_entitlements(term)
        assert hits.entitlement_pks or hits.order_pks, term
        page = Entitlement.objects.filter(hits.as_q()).order_by("-pk")[:100]
        sqls = [q["sql"] for q in queries.captured_queries] + [str(page.query)]
        for sql in sqls:
            if not any(table in sql for table in BIG_TABLES):
                continue
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
                plan = cursor.fetchone()[0]
            plan = plan if isinstance(plan, list) else json.loads(plan)
            scans = [
                node["Relation Name"]
                for node in _plan_nodes(plan[0]["Plan"])
                if node["Node Type"] == "Seq Scan"
            ]
            assert not set(scans) & BIG_TABLES, (term, sql, scans)


def _with_history(order, registry) -> None:
    """An attempt per message, a status event per URL status, a confirmation per
    entitlement: every big changelist has rows of this order."""
    now = timezone.now()
    DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(
            message=m, started_at=now, duration_ms=3, http_status=202, outcome="delivered"
        )
        for m in OutboundMessage.objects.filter(entitlement__delivery_order=order)
    )
    StatusEvent.objects.bulk_create(
        StatusEvent(
            entitlement=e,
            portal=registry.portal,
            from_status="uninitialized",
            to_status="initialized",
            cause="delivery",
            effective_at=now,
        )
        for e in order.entitlements.all()
    )
    for e in order.entitlements.all():
        confirm(registry, e, f"RCV-{e.pk}")


BIG_CHANGELISTS = [
    "/admin/entitlements/entitlement/",
    "/admin/entitlements/entitlementurlstatus/",
    "/admin/entitlements/outboundmessage/",
    "/admin/entitlements/deliveryattempt/",
    "/admin/entitlements/statusevent/",
    "/admin/confirmations/confirmation/",
    "/admin/entitlements/deliveryorder/",
]


@pytest.mark.parametrize("url", BIG_CHANGELISTS)
def test_changelists_query_the_same_for_one_row_and_thirty(registry, admin_client, url):
    admin_client.get(url)  # the session and the content types are cached alike afterwards
    counts = []
    for n in (1, 29):
        _with_history(make_order(registry, n), registry)
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(url)
        assert response.status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], url


@pytest.mark.parametrize("url", BIG_CHANGELISTS[:6])
def test_big_changelists_never_count_a_whole_table(registry, admin_client, url, monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "exact_up_to", 10)
    _with_history(make_order(registry, 30), registry)
    with connection.cursor() as cursor:
        for table in (*BIG_TABLES, "entitlements_entitlementurlstatus"):
            cursor.execute(f"ANALYZE {table}")
        cursor.execute("ANALYZE entitlements_deliveryattempt")
        cursor.execute("ANALYZE entitlements_statusevent")
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url)
    assert response.status_code == 200
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert all("LIMIT" in sql.upper() for sql in counts), counts
    # Nor list a column's values for a filter: SELECT DISTINCT reads the whole table.
    distinct = [q["sql"] for q in queries.captured_queries if "DISTINCT" in q["sql"].upper()]
    assert distinct == [], distinct
    # The estimate (30 rows, just analysed) is what the page shows.
    assert response.context["cl"].result_count >= 11


def test_filtered_changelist_past_the_cap_shows_the_planners_estimate(
    registry, admin_client, monkeypatch
):
    monkeypatch.setattr(EstimatedCountPaginator, "exact_up_to", 10)
    order = make_order(registry, 40)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE entitlements_entitlement")
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(CHANGELIST, {"delivery_order__id__exact": order.pk})
    assert response.context["cl"].result_count >= 11
    assert any(q["sql"].upper().startswith("EXPLAIN") for q in queries.captured_queries)


def test_small_results_are_counted_exactly(registry, admin_client):
    order = make_order(registry, 7)
    response = admin_client.get(CHANGELIST, {"delivery_order__id__exact": order.pk})
    assert response.context["cl"].result_count == 7


def test_exact_search_of_other_changelists(registry, admin_client):
    order = make_order(registry, 3)
    _with_history(order, registry)
    entitlement = order.entitlements.order_by("id").first()
    message = OutboundMessage.objects.filter(entitlement=entitlement).first()
    term = str(entitlement.entitlement_id)
    for url, expected in (
        ("/admin/entitlements/entitlementurlstatus/", 1),
        ("/admin/entitlements/statusevent/", 1),
        ("/admin/entitlements/outboundmessage/", 2),
        ("/admin/confirmations/confirmation/", 1),
    ):
        response = admin_client.get(url, {"q": term})
        assert response.context["cl"].result_count == expected, url
    response = admin_client.get(
        "/admin/entitlements/deliveryattempt/", {"q": str(message.reference_id)}
    )
    assert response.context["cl"].result_count == 1
    response = admin_client.get("/admin/entitlements/outboundmessage/", {"q": "not-a-uuid"})
    assert response.context["cl"].result_count == 0
    response = admin_client.get(
        "/admin/entitlements/outboundmessage/", {"q": order.delivery_order_id}
    )
    assert response.context["cl"].result_count == 6
    response = admin_client.get(
        "/admin/confirmations/confirmation/", {"q": f"RCV-{entitlement.pk}"}
    )
    assert response.context["cl"].result_count == 1


def test_status_events_filter_by_to_status(registry, admin_client):
    order = make_order(registry, 2)
    _with_history(order, registry)
    url = "/admin/entitlements/statusevent/"
    shown = admin_client.get(url, {"to_status": "initialized"}).context["cl"].result_count
    assert shown == StatusEvent.objects.filter(to_status="initialized").count() >= 2
    assert admin_client.get(url, {"to_status": "licensed"}).context["cl"].result_count == 0


def test_seller_filter_lists_sellers_only(registry, admin_client):
    make_order(registry, 1)
    for url in (CHANGELIST, "/admin/entitlements/deliveryorder/"):
        response = admin_client.get(url)
        spec = next(s for s in response.context["cl"].filter_specs if s.title == "seller")
        assert {name for _, name in spec.lookup_choices} == {"Boekhandel Oost", "Boekhandel Zee"}
    mine = make_order(registry, 2, seller=registry.other_seller)
    response = admin_client.get(CHANGELIST, {"seller": registry.other_seller.pk})
    assert {e.pk for e in response.context["cl"].result_list} == pks(mine.entitlements)


def test_url_status_filter_by_status_and_portal(registry, admin_client):
    order = make_order(registry, 3, portals=[registry.portal, registry.other_portal])
    first, second, _ = order.entitlements.order_by("id")
    first.url_statuses.filter(portal=registry.portal).update(status="processed")
    second.url_statuses.filter(portal=registry.other_portal).update(status="processed")
    response = admin_client.get(CHANGELIST, {"url_status": "processed"})
    assert {e.pk for e in response.context["cl"].result_list} == {first.pk, second.pk}
    response = admin_client.get(
        CHANGELIST, {"url_status": "processed", "url_portal": registry.portal.pk}
    )
    assert {e.pk for e in response.context["cl"].result_list} == {first.pk}


def test_school_organisation_ids_are_looked_up_by_every_type(registry):
    # The lookup names every type so that it can use the (type, id) unique index.
    SchoolOrganisationId.objects.create(
        school=registry.school, organisation_id="OIE-9", organisation_id_type="OIE_CODE"
    )
    order = make_order(registry, 2)
    assert found("OIE-9") == pks(order.entitlements)
