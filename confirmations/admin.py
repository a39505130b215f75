"""Admin for received confirmations and activations, with who asked for the request each
answers."""

from django.contrib import admin

from aanspraak.admin_paging import BigTableAdminMixin
from aanspraak.admin_records import RecordAdmin

from .models import Confirmation
from .selectors.search import confirmations_q


@admin.register(Confirmation)
class ConfirmationAdmin(BigTableAdminMixin, RecordAdmin):
    list_display = [
        "receive_id",
        "kind",
        "sender",
        "entitlement_ref",
        "new_entitlement_status",
        "new_url_status",
        "state",
        "processed_timestamp",
        "received_at",
        "requested_by",
    ]
    list_filter = ["state", "kind", "sender", "new_entitlement_status", "new_url_status"]
    # Shows the search box; the search is confirmations_q's (exact, indexed).
    search_fields = ["receive_id"]
    list_select_related = ["sender", "message"]
    raw_id_fields = ["entitlement", "message", "client"]
    readonly_fields = ["received_at", "decided_at", "requested_by"]

    def get_search_results(self, request, queryset, search_term):
        """By entitlementReceiveId or entitlementId, exact and indexed (docs/support-desk.md)."""
        q = confirmations_q(search_term)
        return (queryset if q is None else queryset.filter(q)), False

    @admin.display(description="request asked by")
    def requested_by(self, confirmation: Confirmation) -> str:
        """The staff user whose admin action made the request this answers (docs/security.md,
        "Audit"); empty when the hub made it itself."""
        return confirmation.message.requested_by if confirmation.message else ""
