"""The delivery order's admin page with its totals and bar chart, and the contract page
(docs/support-desk.md, "Delivery order page").

The chart is an inline SVG the hub draws itself (no script, no CDN: the admin works offline);
each bar and total links to the entitlement changelist filtered to what it counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from .selectors.totals import Totals, contract_orders, contract_totals, order_totals

# Geometry of the chart, in SVG user units (the image scales with the page).
LABEL_WIDTH = 120
BAR_SPACE = 380
COUNT_WIDTH = 90
ROW = 22
HEADING = 28
WIDTH = LABEL_WIDTH + BAR_SPACE + COUNT_WIDTH


@dataclass(frozen=True)
class Bar:
    """One total of the chart: a label, a bar of proportional width, the count, a link."""

    label: str
    count: int
    href: str
    y: int
    width: int

    @property
    def text_y(self) -> int:
        """Baseline of the bar's label and count."""
        return self.y + ROW - 8

    @property
    def count_x(self) -> int:
        """Where the count is written: just after the bar."""
        return LABEL_WIDTH + self.width + 6


@dataclass(frozen=True)
class Group:
    """A titled group of bars (entitlement status, URL status)."""

    title: str
    y: int
    bars: list[Bar]

    @property
    def text_y(self) -> int:
        """Baseline of the group's title."""
        return self.y + HEADING - 10


@dataclass(frozen=True)
class Chart:
    """The whole chart: its groups, size and accessible title."""

    title: str
    groups: list[Group]
    height: int
    width: int = WIDTH
    label_width: int = LABEL_WIDTH
    bar_height: int = ROW - 6


def changelist_link(filters: dict[str, str | int]) -> str:
    """The entitlement changelist filtered by ``filters`` (lookups it allows)."""
    url = reverse("admin:entitlements_entitlement_changelist")
    return f"{url}?{urlencode(filters)}"


def build_chart(title: str, totals: Totals, scope: dict[str, str | int]) -> Chart:
    """The bars of ``totals``; ``scope`` is the changelist filter of the order or contract
    every link keeps."""
    largest = max([1, *totals.by_status.values(), *totals.by_url_status.values()])
    groups, y = [], 0
    for group_title, counts, parameter in (
        ("Entitlement status", totals.by_status, "status__exact"),
        ("URL status (entitlements at some portal)", totals.by_url_status, "url_status"),
    ):
        group_y, y = y, y + HEADING
        bars = []
        for label, count in counts.items():
            width = round(BAR_SPACE * count / largest) if count else 0
            href = changelist_link({**scope, parameter: label})
            bars.append(Bar(label, count, href, y, max(width, 2) if count else 0))
            y += ROW
        groups.append(Group(group_title, group_y, bars))
    return Chart(title, groups, height=y + 4)


def portal_rows(totals: Totals, scope: dict[str, str | int]) -> list[dict]:
    """The URL statuses per portal, each count with its link."""
    return [
        {
            "portal": portal.portal,
            "cells": [
                (
                    count,
                    changelist_link(
                        {**scope, "url_status": status, "url_portal": portal.portal_pk}
                    ),
                )
                for status, count in portal.by_status.items()
            ],
        }
        for portal in totals.portals
    ]


def totals_context(title: str, totals: Totals, scope: dict[str, str | int]) -> dict:
    """What the totals' template (``includes/order_totals.html``) shows."""
    return {
        "totals": totals,
        "chart": build_chart(title, totals, scope),
        "url_statuses": list(totals.by_url_status),
        "portal_rows": portal_rows(totals, scope),
        "all_link": changelist_link(scope),
    }


class DeliveryOrderPageMixin:
    """For ``DeliveryOrderAdmin``: the totals on the order's page and the contract page."""

    change_form_template = "admin/entitlements/deliveryorder/change_form.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The order's page with its totals (five queries, whatever its size)."""
        extra = dict(extra_context or {})
        if str(object_id).isdigit():
            pk = int(object_id)
            scope = {"delivery_order__id__exact": pk}
            extra.update(totals_context(f"Totals of delivery order {pk}", order_totals(pk), scope))
        return super().change_view(request, object_id, form_url, extra)

    def get_urls(self):
        """The contract page before the admin's own (its catch-all would take it)."""
        view = self.admin_site.admin_view(self.contract_view)
        own = [
            path("contract/<path:contract_id>/", view, name="entitlements_deliveryorder_contract")
        ]
        return own + super().get_urls()

    def contract_view(self, request, contract_id: str):
        """The totals of every delivery order of one contract (``contractId``)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        orders = contract_orders(contract_id)
        if not orders:
            raise Http404("No delivery order has this contract.")
        scope = {"delivery_order__contract_id__exact": contract_id}
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Contract {contract_id}",
            "contract_id": contract_id,
            "orders": orders,
            **totals_context(
                f"Totals of contract {contract_id}", contract_totals(contract_id), scope
            ),
        }
        return TemplateResponse(request, "admin/entitlements/deliveryorder/contract.html", context)
