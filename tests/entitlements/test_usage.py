"""Usage reconciliation with a licence registry on loopback (seed 001,
``GET /usage/contracts/{id}``)."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command

from aanspraak.outbound import client as outbound_client
from aanspraak.outbound.fetch import ChainCallError, MalformedBody
from aanspraak.outbound.usage import get_contract_usage, parse_contract_usage, registry_endpoint
from entitlements.models import Entitlement, UsageDifference, UsageReconciliation
from entitlements.selectors.usage import hub_usage
from entitlements.services.usage import reconcile_contracts
from tests.support.factories import make_order
from tests.support.loopback import Answer, LoopbackParty, point_party_at


@pytest.fixture
def registry_server(registry):
    """The licensor on loopback with a token endpoint; ``usage[contractId]`` is answered."""
    usage: dict[str, object] = {}

    def answer(received):
        contract = received.path.rsplit("/", 1)[-1]
        if contract in usage:
            return Answer(200, usage[contract])
        return Answer(404, {"status": 404, "statusMessage": "unknown contract"})

    server = LoopbackParty(answer).start()
    server.require_token = True
    server.usage = usage
    party = registry.licensor
    point_party_at(party, server, client=("hub-at-noord", "noord-secret"))
    yield server
    server.stop()


def _set(order, statuses: list[str]) -> list[Entitlement]:
    entitlements = list(order.entitlements.order_by("id"))
    for e, status in zip(entitlements, statuses, strict=True):
        e.status = status
        if status in ("cancelled", "blocked"):
            e.end_date = dt.date(2026, 9, 1)
    Entitlement.objects.bulk_update(entitlements, ["status", "end_date"])
    return entitlements


def _usage_of(order, entitlements, statuses=None) -> dict:
    """The registry's DeliveryOrderUsage agreeing with the hub (or with ``statuses``)."""
    statuses = statuses or [e.status for e in entitlements]
    totals = {
        "totalEntitled": 0,
        "totalLicensed": 0,
        "totalCancelled": 0,
        "totalBlocked": 0,
        "totalExpired": 0,
    }
    for status in statuses:
        key = "total" + status.capitalize()
        if key in totals:
            totals[key] += 1
    return {
        "deliveryOrderId": order.delivery_order_id,
        **totals,
        "entitlements": [
            {"entitlementId": str(e.entitlement_id), "entitlementStatus": s, "productId": "x"}
            for e, s in zip(entitlements, statuses, strict=True)
        ],
    }


def test_matching_usage_is_recorded_as_matched(registry, registry_server):
    order = make_order(registry, 4, delivery_order_id="DO-1")
    entitlements = _set(order, ["entitled", "licensed", "licensed", "cancelled"])
    registry_server.usage["C-1"] = _usage_of(order, entitlements)
    [result] = reconcile_contracts()
    assert (result.outcome, result.difference_count, result.http_status) == ("matched", 0, 200)
    assert result.hub_totals["contract"]["totalLicensed"] == 2
    assert result.registry_totals["orders"]["DO-1"]["totalCancelled"] == 1
    request = registry_server.received[-1]
    assert request.method == "GET" and request.path == "/usage/contracts/C-1"
    assert "scope=eduv.usage.entitlor" in registry_server.token_requests[0].body["_form"]


def test_registry_whose_totals_and_statuses_differ(registry, registry_server):
    order = make_order(registry, 4, delivery_order_id="DO-1")
    entitlements = _set(order, ["entitled", "licensed", "entitled", "entitled"])
    usage = _usage_of(order, entitlements, ["entitled", "licensed", "licensed", "entitled"])
    usage["entitlements"].pop()  # the registry lacks the fourth
    usage["totalEntitled"] = 1
    usage["entitlements"].append(
        {"entitlementId": "3f0c2d9e-0000-4000-8000-000000000000", "entitlementStatus": "blocked"}
    )
    usage.pop("totalExpired")  # a total left out is not compared
    registry_server.usage["C-1"] = usage
    [result] = reconcile_contracts()
    assert result.outcome == "different"
    found = {
        (d.kind, d.delivery_order_id, d.entitlement_id, d.field, d.hub_value, d.registry_value)
        for d in result.differences.all()
    }
    e = [str(x.entitlement_id) for x in entitlements]
    assert found == {
        ("total", "", "", "totalEntitled", "3", "1"),
        ("total", "", "", "totalLicensed", "1", "2"),
        ("total", "DO-1", "", "totalEntitled", "3", "1"),
        ("total", "DO-1", "", "totalLicensed", "1", "2"),
        ("status", "DO-1", e[2], "entitlementStatus", "entitled", "licensed"),
        ("missing-at-registry", "DO-1", e[3], "", "entitled", ""),
        ("unknown-at-hub", "DO-1", "3f0c2d9e-0000-4000-8000-000000000000", "", "", "blocked"),
    }
    assert result.difference_count == 7


def test_contract_of_several_orders_as_an_array(registry, registry_server):
    one = make_order(registry, 2, delivery_order_id="DO-1")
    two = make_order(registry, 1, delivery_order_id="DO-2")
    make_order(registry, 1, delivery_order_id="DO-3")  # the registry never heard of it
    a, b = _set(one, ["entitled", "entitled"]), _set(two, ["licensed"])
    registry_server.usage["C-1"] = [
        _usage_of(one, a),
        _usage_of(two, b),
        {"deliveryOrderId": "DO-X", "totalEntitled": 0, "entitlements": []},
    ]
    [result] = reconcile_contracts("C-1")
    kinds = sorted((d.kind, d.delivery_order_id) for d in result.differences.all())
    assert ("order-missing-at-registry", "DO-3") in kinds
    assert ("order-unknown-at-hub", "DO-X") in kinds
    assert not [k for k in kinds if k[0] in ("status", "missing-at-registry")]


def test_same_order_id_of_two_sellers_is_ambiguous_not_merged(registry, registry_server):
    """F6: deliveryOrderId is unique per seller only; two sellers' DO-1 under one contract
    and licensor are not merged: the registry's DO-1 is recorded as ambiguous."""
    mine = make_order(registry, 2, delivery_order_id="DO-1")
    theirs = make_order(registry, 1, delivery_order_id="DO-1", seller=registry.other_seller)
    a = _set(mine, ["entitled", "licensed"])
    b = _set(theirs, ["entitled"])
    registry_server.usage["C-1"] = _usage_of(mine, a)  # the registry knows one DO-1
    [result] = reconcile_contracts()
    seller, other = registry.seller.name, registry.other_seller.name
    assert result.hub_totals["orders"] == {
        f"DO-1 (seller {seller})": {
            "entitlements": 2,
            "totalEntitled": 1,
            "totalLicensed": 1,
            "totalCancelled": 0,
            "totalBlocked": 0,
            "totalExpired": 0,
        },
        f"DO-1 (seller {other})": {
            "entitlements": 1,
            "totalEntitled": 1,
            "totalLicensed": 0,
            "totalCancelled": 0,
            "totalBlocked": 0,
            "totalExpired": 0,
        },
    }
    found = {
        (d.kind, d.delivery_order_id, d.entitlement_id, d.field, d.hub_value, d.registry_value)
        for d in result.differences.all()
    }
    assert found == {
        (
            "order-unknown-at-hub",
            "DO-1",
            "",
            "ambiguous",
            f"2 orders with this id, of sellers {other}, {seller}"
            if other < seller
            else f"2 orders with this id, of sellers {seller}, {other}",
            "2",
        ),
        ("total", "", "", "totalEntitled", "2", "1"),
        # Entitlement ids are the hub's own: still compared one by one.
        ("missing-at-registry", "DO-1", str(b[0].entitlement_id), "", "entitled", ""),
    }


def test_hub_totals_come_from_one_aggregate_query(registry, django_assert_num_queries):
    make_order(registry, 3, delivery_order_id="DO-1")
    make_order(registry, 2, delivery_order_id="DO-2", product=registry.other_product)
    with django_assert_num_queries(1):
        figures = hub_usage()
    assert sorted((c, lic) for c, lic in figures) == sorted(
        [("C-1", registry.licensor.pk), ("C-1", registry.other_licensor.pk)]
    )
    assert figures[("C-1", registry.licensor.pk)].totals["entitlements"] == 3
    assert list(figures[("C-1", registry.licensor.pk)].orders) == [(registry.seller.name, "DO-1")]


@pytest.mark.parametrize(
    "answer, http_status, text",
    [
        (Answer(403, {"status": 403, "statusMessage": "no scope"}), 403, "forbidden"),
        (Answer(404, {"status": 404, "statusMessage": "unknown"}), 404, "not-found"),
        (Answer(500, {"status": 99, "statusMessage": "oops"}), 500, "unavailable"),
        (Answer(200, raw=b"not json"), 200, "malformed"),
        (Answer(200, {"deliveryOrderId": "DO-1"}), 200, "usage.entitlements is required"),
    ],
)
def test_failed_fetches_are_recorded(registry, registry_server, answer, http_status, text):
    make_order(registry, 1, delivery_order_id="DO-1")
    registry_server.answer = lambda r: answer
    [result] = reconcile_contracts()
    assert (result.outcome, result.http_status) == ("failed", http_status)
    assert text in result.error
    assert not UsageDifference.objects.exists()


def test_401_and_timeout(registry, registry_server, settings):
    endpoint = registry_endpoint(registry.licensor)
    registry_server.usage["C-1"] = {"deliveryOrderId": "DO-1", "entitlements": []}
    assert get_contract_usage(endpoint, "C-1")[0].delivery_order_id == "DO-1"
    registry_server.tokens.clear()
    with pytest.raises(ChainCallError) as caught:
        get_contract_usage(endpoint, "C-1")
    assert (caught.value.kind, caught.value.http_status) == ("unauthorized", 401)
    settings.HUB_OUTBOUND_TIMEOUT = 0.3
    outbound_client.reset_sessions()
    registry_server.answer = lambda r: Answer(200, {}, delay=1.0)
    with pytest.raises(ChainCallError, match="timeout") as caught:
        get_contract_usage(registry_endpoint(registry.licensor), "C-1")
    assert caught.value.transient


@pytest.mark.parametrize(
    "body, message",
    [
        ({"entitlements": []}, "usage.deliveryOrderId is required"),
        ({"deliveryOrderId": "D", "totalLicensed": -1, "entitlements": []}, "totalLicensed"),
        ({"deliveryOrderId": "D", "entitlements": [{"entitlementId": "x"}]}, "entitlementStatus"),
        ([{"deliveryOrderId": "D", "entitlements": []}] * 2, "listed twice"),
        ("text", "usage must be an object"),
    ],
)
def test_malformed_usage_names_the_field(body, message):
    with pytest.raises(MalformedBody, match=message):
        parse_contract_usage(body)


def test_command_draws_a_progress_bar_and_reports(registry, registry_server):
    order = make_order(registry, 2, delivery_order_id="DO-1")
    registry_server.usage["C-1"] = _usage_of(order, list(order.entitlements.order_by("id")))
    order2 = make_order(registry, 1, delivery_order_id="DO-2")
    order2.contract_id = "C-2"
    order2.save()
    out, err = io.StringIO(), io.StringIO()
    call_command("reconcile_usage", stdout=out, stderr=err)
    assert "[###############---------------] 1/2" in err.getvalue()
    assert "[##############################] 2/2" in err.getvalue()
    assert "C-1 at Uitgeverij Noord: matched" in out.getvalue()
    assert "C-2 at Uitgeverij Noord: failed" in out.getvalue()
    out = io.StringIO()
    call_command("reconcile_usage", "--contract", "C-9", "--no-progress", stdout=out)
    assert "no contract C-9" in out.getvalue()
    assert UsageReconciliation.objects.count() == 2


def test_admin_shows_the_differences(registry, registry_server, admin_client):
    order = make_order(registry, 1, delivery_order_id="DO-1")
    registry_server.usage["C-1"] = {"deliveryOrderId": "DO-1", "entitlements": []}
    [result] = reconcile_contracts()
    page = admin_client.get(f"/admin/entitlements/usagereconciliation/{result.pk}/change/")
    assert page.status_code == 200
    entitlement_id = str(order.entitlements.get().entitlement_id)
    assert entitlement_id.encode() in page.content and b"missing-at-registry" in page.content
    listing = admin_client.get("/admin/entitlements/usagereconciliation/")
    assert listing.status_code == 200 and b"different" in listing.content


def test_periodic_task_reconciles_every_contract(registry, registry_server, settings):
    from entitlements import tasks

    make_order(registry, 1, delivery_order_id="DO-1")
    registry_server.usage["C-1"] = {"deliveryOrderId": "DO-1", "entitlements": []}
    assert tasks.reconcile_usage() == {"different": 1}
    schedule = settings.CELERY_BEAT_SCHEDULE["usage-reconcile"]
    assert schedule["task"] == "entitlements.tasks.reconcile_usage"
    assert schedule["schedule"] == settings.HUB_USAGE_RECONCILE_SECONDS
    assert (
        settings.CELERY_BEAT_SCHEDULE["enrollment-sweep"]["task"]
        == "entitlements.tasks.sweep_enrollments"
    )
