"""Admin for received confirmations and activations."""

from django.contrib import admin

from aanspraak.admin_records import RecordAdmin

from .models import Confirmation


@admin.register(Confirmation)
class ConfirmationAdmin(RecordAdmin):
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
    ]
    list_filter = ["state", "kind", "sender", "new_entitlement_status", "new_url_status"]
    search_fields = ["receive_id", "reference_id", "entitlement_ref", "product_id"]
    list_select_related = ["sender"]
    raw_id_fields = ["entitlement", "message", "client"]
    readonly_fields = ["received_at", "decided_at"]
