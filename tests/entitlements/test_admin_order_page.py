"""The delivery order's admin page (totals, the inline SVG chart whose bars link to the
filtered entitlements, outbound totals per recipient), the contract page, and the admin's
readable rows."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from entitlements.models import (
    DeliveryOrder,
    DeliveryOrderPortal,
    Entitlement,
    EntitlementUrlStatus,
    OutboundMessage,
    StatusEvent,
)
from entitlements.selectors.totals import (
    _url_status_counts,
    _url_status_counts_in_python,
    order_totals,
)
from tests.support.factories import make_order

pytestmark = pytest.mark.django_db


def order_page(order) -> str:
    return reverse("admin:entitlements_deliveryorder_change", args=[order.pk])


@pytest.fixture
def order(registry):
    """Six entitlements: 3 created, 2 entitled, 1 licensed; URL statuses at two portals."""
    order = make_order(registry, 6, portals=[registry.portal, registry.other_portal])
    ids = list(order.entitlements.order_by("id").values_list("pk", flat=True))
    Entitlement.objects.filter(pk__in=ids[3:5]).update(status="entitled")
    Entitlement.objects.filter(pk=ids[5]).update(status="licensed")
    EntitlementUrlStatus.objects.filter(entitlement_id__in=ids[:2], portal=registry.portal).update(
        status="processed"
    )
    EntitlementUrlStatus.objects.filter(entitlement_id=ids[0], portal=registry.other_portal).update(
        status="processed"
    )
    messages = OutboundMessage.objects.filter(entitlement__delivery_order=order)
    messages.filter(recipient=registry.licensor).update(state="delivered")
    failed = messages.filter(recipient=registry.portal).order_by("id")[:2]
    messages.filter(pk__in=[m.pk for m in failed]).update(state="failed")
    OutboundMessage.objects.create(
        kind="deliveryorder-confirmation", recipient=registry.seller, delivery_order=order
    )
    return order


def test_url_status_counts_agree_on_postgresql_and_the_embedded_default(order):
    """The LATERAL statement (PostgreSQL) and the Python count (SQLite) give the same rows."""
    orders = DeliveryOrder.objects.filter(pk=order.pk).values("pk")
    assert sorted(_url_status_counts(orders)) == sorted(_url_status_counts_in_python(orders))
    rows = _url_status_counts(orders)
    assert {(name, status, n) for _, name, status, n, _ in rows} == {
        ("Portal Zuid", "processed", 2),
        ("Portal Zuid", "uninitialized", 4),
        ("Portal Klei", "processed", 1),
        ("Portal Klei", "uninitialized", 5),
    }
    # Each entitlement counted once per status, whatever its number of portals.
    firsts = {"processed": 0, "uninitialized": 0}
    for *_, status, _, first in rows:
        firsts[status] += first
    assert firsts == {"processed": 2, "uninitialized": 5}


def test_totals(order, registry):
    totals = order_totals(order.pk)
    assert totals.entitlements == 6
    assert totals.by_status == {
        "created": 3,
        "entitled": 2,
        "licensed": 1,
        "cancelled": 0,
        "blocked": 0,
        "expired": 0,
    }
    # Entitlements with that URL status at some portal.
    assert totals.by_url_status["processed"] == 2
    assert totals.by_url_status["uninitialized"] == 5  # the first is processed at both
    per_portal = {p.portal: p.by_status for p in totals.portals}
    assert per_portal["Portal Zuid"]["processed"] == 2
    assert per_portal["Portal Klei"]["processed"] == 1
    assert per_portal["Portal Klei"]["uninitialized"] == 5
    recipients = {r.recipient: (r.delivered, r.pending, r.failed) for r in totals.recipients}
    assert recipients == {
        "Uitgeverij Noord": (6, 0, 0),
        "Portal Zuid": (0, 4, 2),
        "Portal Klei": (0, 6, 0),
        "Boekhandel Oost": (0, 1, 0),
    }


def _bars(page: str) -> dict[str, tuple[int, str]]:
    """The chart's bars: label → (count, link)."""
    svg = re.search(r'<svg class="status-chart" role="img".*?</svg>', page, re.S)
    assert svg, "no chart"
    bars = {}
    for href, label, count in re.findall(
        r'<a href="([^"]+)" class="status-chart-bar" data-label="([^"]+)" data-count="(\d+)"',
        svg.group(0),
    ):
        bars.setdefault(label, []).append((int(count), unescape(href)))
    return bars


def test_the_page_draws_the_totals_and_every_bar_links_to_what_it_counts(order, admin_client):
    page = admin_client.get(order_page(order)).content.decode()
    assert re.search(r'<svg class="status-chart" role="img"[^>]*>\s*<title', page)
    assert "cdn" not in page.lower() and '<script src="http' not in page
    bars = _bars(page)
    # Entitlement statuses first, then URL statuses ("cancelled" etc. appear in both).
    (created, created_link), *_ = bars["created"]
    assert created == 3
    shown = admin_client.get(created_link)
    assert {e.pk for e in shown.context["cl"].result_list} == set(
        order.entitlements.filter(status="created").values_list("pk", flat=True)
    )
    (processed, processed_link), *_ = bars["processed"]
    assert processed == 2
    shown = admin_client.get(processed_link)
    assert shown.context["cl"].result_count == 2
    # Every link keeps to the order: another order's entitlements are not counted or listed.
    assert "delivery_order__id__exact" in created_link
    # Outbound totals per recipient.
    table = re.search(r'<table id="outbound-totals">.*?</table>', page, re.S).group(0)
    assert re.search(
        r"Portal Zuid</th><td class=\"delivered\">0</td><td class=\"pending\">4</td>"
        r"<td class=\"failed\">2</td>",
        table,
    )
    # The contract's page is linked.
    assert reverse("admin:entitlements_deliveryorder_contract", args=["C-1"]) in page


def test_bars_of_another_order_are_its_own(order, registry, admin_client):
    other = make_order(registry, 2)
    bars = _bars(admin_client.get(order_page(other)).content.decode())
    (created, link), *_ = bars["created"]
    assert created == 2
    shown = admin_client.get(link)
    assert {e.pk for e in shown.context["cl"].result_list} == set(
        other.entitlements.values_list("pk", flat=True)
    )


def test_portal_links_filter_by_portal(order, registry, admin_client):
    page = admin_client.get(order_page(order)).content.decode()
    table = re.search(r'<table id="url-status-totals">.*?</table>', page, re.S).group(0)
    row = re.search(r"Portal Klei</th>(.*?)</tr>", table, re.S).group(1)
    links = dict(
        (int(count), unescape(href))
        for href, count in re.findall(r'<a href="([^"]+)">(\d+)</a>', row)
        if "url_status=processed" in href
    )
    shown = admin_client.get(links[1])
    assert shown.context["cl"].result_count == 1


def test_the_page_takes_the_same_queries_whatever_the_order_size(registry, admin_client):
    small, large = make_order(registry, 2), make_order(registry, 40)
    admin_client.get(order_page(small))
    counts = []
    for o in (small, large):
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(order_page(o)).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_contract_page(order, registry, admin_client):
    second = make_order(registry, 4)
    elsewhere = make_order(registry, 5)
    elsewhere.contract_id = "C-2"
    elsewhere.save()
    url = reverse("admin:entitlements_deliveryorder_contract", args=["C-1"])
    response = admin_client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert order.delivery_order_id in page and second.delivery_order_id in page
    assert elsewhere.delivery_order_id not in page
    assert response.context["totals"].entitlements == 10
    (created, link), *_ = _bars(page)["created"]
    assert created == 3 + 4
    shown = admin_client.get(link)
    assert {e.pk for e in shown.context["cl"].result_list} == set(
        Entitlement.objects.filter(delivery_order__contract_id="C-1", status="created").values_list(
            "pk", flat=True
        )
    )
    missing = reverse("admin:entitlements_deliveryorder_contract", args=["NOPE"])
    assert admin_client.get(missing).status_code == 404


def test_contract_page_needs_the_admin(order, client):
    url = reverse("admin:entitlements_deliveryorder_contract", args=["C-1"])
    response = client.get(url)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_rows_read_as_names_not_ids(order, registry, admin_client):
    entitlement = order.entitlements.order_by("id").first()
    StatusEvent.objects.create(
        entitlement=entitlement,
        from_status="created",
        to_status="entitled",
        cause="confirmation",
        effective_at=timezone.now(),
    )
    url_status = entitlement.url_statuses.get(portal=registry.portal)
    assert str(url_status) == "Portal Zuid: processed"
    assert str(entitlement.events.get()) == "created → entitled"
    assert str(DeliveryOrderPortal.objects.filter(delivery_order=order).first()).startswith(
        "Portal "
    )
    page = admin_client.get(
        reverse("admin:entitlements_entitlement_change", args=[entitlement.pk])
    ).content.decode()
    assert "Portal Zuid: processed" in page
    assert "created → entitled" in page
    assert f"{entitlement.pk}@" not in page
    assert EntitlementUrlStatus._meta.verbose_name_plural == "URL statuses"
    assert "URL statuses" in admin_client.get("/admin/").content.decode()
