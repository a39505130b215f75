"""The entitlement changelist's search and filters (docs/support-desk.md, "Search").

Kept apart from ``admin.py`` so the changelist's parts can be read and tested on their own;
the search itself is a selector (``selectors/search.py``), the admin only calls it.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Exists, OuterRef

from aanspraak.admin_paging import BigTableAdminMixin
from aanspraak.models import Party

from .models import EntitlementUrlStatus
from .selectors.search import find_entitlements
from .statuses import EntitlementStatus, UrlStatus


class SellerFilter(admin.SimpleListFilter):
    """ "By seller": the parties with the seller role only (portals, registries and
    dashboards never place an order)."""

    title = "seller"
    parameter_name = "seller"
    field_path = "delivery_order__seller"

    def lookups(self, request, model_admin):
        return [
            (str(pk), name)
            for pk, name in Party.objects.filter(is_seller=True).values_list("pk", "name")
        ]

    def queryset(self, request, queryset):
        if self.value() and self.value().isdigit():
            return queryset.filter(**{f"{self.field_path}_id": int(self.value())})
        return queryset


class OrderSellerFilter(SellerFilter):
    """The delivery order changelist's "By seller"."""

    field_path = "seller"


class UrlStatusFilter(admin.SimpleListFilter):
    """Entitlements with this URL status at some portal, or at the portal ``url_portal``
    names (the delivery order page's links). ``EXISTS`` on the (entitlement, portal) unique
    index: a row per entitlement, never a join that lists one twice."""

    title = "URL status"
    parameter_name = "url_status"
    portal_parameter = "url_portal"

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        if self.portal_parameter in params:
            self.used_parameters[self.portal_parameter] = params.pop(self.portal_parameter)[-1]

    def expected_parameters(self):
        return [self.parameter_name, self.portal_parameter]

    def lookups(self, request, model_admin):
        return UrlStatus.choices

    def queryset(self, request, queryset):
        status = self.value()
        if status not in UrlStatus.values:
            return queryset
        rows = EntitlementUrlStatus.objects.filter(entitlement=OuterRef("pk"), status=status)
        portal = self.used_parameters.get(self.portal_parameter)
        if portal and portal.isdigit():
            rows = rows.filter(portal_id=int(portal))
        return queryset.filter(Exists(rows))


class ToStatusFilter(admin.SimpleListFilter):
    """The status-event list's "By to status": the statuses of the transition table, an
    entitlement's and a URL's, listed from the enums; Django's default filter for a plain
    column would read ``SELECT DISTINCT`` over every event (0.8 s at national size)."""

    title = "to status"
    parameter_name = "to_status"

    statuses = tuple(dict.fromkeys([*EntitlementStatus.values, *UrlStatus.values]))

    def lookups(self, request, model_admin):
        return [(value, value) for value in self.statuses]

    def queryset(self, request, queryset):
        if self.value() in self.statuses:
            return queryset.filter(to_status=self.value())
        return queryset


# Filters the delivery order and contract pages link with, beyond those in list_filter.
LINKED_LOOKUPS = frozenset({"delivery_order__id__exact", "delivery_order__contract_id__exact"})


class EntitlementSearchMixin(BigTableAdminMixin):
    """The entitlement changelist: the support search, estimated counts, the linked
    filters."""

    def get_search_results(self, request, queryset, search_term):
        """Entitlements the search names (``find_entitlements``): exact indexed lookups,
        never duplicates."""
        if not search_term.strip():
            return queryset, False
        return queryset.filter(find_entitlements(search_term).as_q()), False

    def lookup_allowed(self, lookup, value, request=None):
        """Also the delivery order's and the contract's links."""
        return lookup in LINKED_LOOKUPS or super().lookup_allowed(lookup, value, request)
