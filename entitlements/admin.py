"""Admin for delivery orders, entitlements, URL statuses, outbound messages and events."""

from django.contrib import admin

from aanspraak.admin_exact_search import ExactSearchMixin
from aanspraak.admin_paging import BigTableAdminMixin
from aanspraak.admin_records import RecordAdmin, RecordInline

from .admin_actions import propose_block, propose_cancel, resend_selected
from .admin_orders import DeliveryOrderPageMixin
from .admin_search import (
    EntitlementSearchMixin,
    OrderSellerFilter,
    SellerFilter,
    ToStatusFilter,
    UrlStatusFilter,
)
from .models import (
    DeliveryAttempt,
    DeliveryOrder,
    DeliveryOrderIntake,
    DeliveryOrderPortal,
    EnrollmentLookup,
    Entitlement,
    EntitlementUrlStatus,
    OutboundMessage,
    StatusEvent,
    UsageDifference,
    UsageReconciliation,
)


class DeliveryOrderPortalInline(RecordInline):
    model = DeliveryOrderPortal
    extra = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("portal")


@admin.register(DeliveryOrder)
class DeliveryOrderAdmin(DeliveryOrderPageMixin, RecordAdmin):
    list_display = [
        "delivery_order_id",
        "seller",
        "school",
        "product",
        "delivery_type",
        "status",
        "start_date",
        "expiration_date",
    ]
    list_filter = ["status", "delivery_type", "product", OrderSellerFilter]
    search_fields = ["delivery_order_id", "contract_id", "intakes__reference_id"]
    list_select_related = ["seller", "school", "product"]
    raw_id_fields = ["school", "product", "seller"]
    inlines = [DeliveryOrderPortalInline]


@admin.register(DeliveryOrderIntake)
class DeliveryOrderIntakeAdmin(RecordAdmin):
    list_display = ["reference_id", "receive_id", "action", "seller", "received_at"]
    list_filter = ["action", "seller"]
    search_fields = ["reference_id", "receive_id", "delivery_order__delivery_order_id"]
    list_select_related = ["seller"]
    raw_id_fields = ["delivery_order"]


class UrlStatusInline(RecordInline):
    model = EntitlementUrlStatus
    extra = 0
    readonly_fields = ["portal", "status", "status_changed_at", "date_last_modified"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("portal")


class StatusEventInline(RecordInline):
    model = StatusEvent
    extra = 0
    can_delete = False
    readonly_fields = [
        "portal",
        "from_status",
        "to_status",
        "cause",
        "cause_ref",
        "effective_at",
        "recorded_at",
    ]
    fields = readonly_fields
    ordering = ["recorded_at", "id"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("portal")


@admin.register(Entitlement)
class EntitlementAdmin(EntitlementSearchMixin, RecordAdmin):
    list_display = [
        "entitlement_id",
        "entitlement_type",
        "status",
        "delivery_order",
        "user_master_identifier",
        "date_last_modified",
    ]
    list_filter = [
        "status",
        UrlStatusFilter,
        "entitlement_type",
        "delivery_order__product",
        SellerFilter,
    ]
    # Shows the search box; the search is EntitlementSearchMixin's (selectors/search.py).
    search_fields = ["entitlement_id"]
    list_select_related = ["delivery_order"]
    raw_id_fields = ["delivery_order"]
    readonly_fields = ["entitlement_id", "status_changed_at", "date_created", "date_last_modified"]
    inlines = [UrlStatusInline, StatusEventInline]


@admin.register(EntitlementUrlStatus)
class EntitlementUrlStatusAdmin(ExactSearchMixin, BigTableAdminMixin, RecordAdmin):
    list_display = ["entitlement", "portal", "status", "date_last_modified"]
    list_filter = ["status", "portal"]
    exact_search = {"entitlement__entitlement_id": "uuid"}
    list_select_related = ["entitlement", "portal"]
    raw_id_fields = ["entitlement"]


class DeliveryAttemptInline(RecordInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["started_at", "duration_ms", "http_status", "outcome", "error"]


@admin.register(OutboundMessage)
class OutboundMessageAdmin(ExactSearchMixin, BigTableAdminMixin, RecordAdmin):
    list_display = [
        "reference_id",
        "kind",
        "recipient",
        "proposed_entitlement_status",
        "proposed_url_status",
        "state",
        "attempt_count",
        "created_at",
        "requested_by",
    ]
    list_filter = ["state", "kind", "recipient"]
    exact_search = {
        "reference_id": "uuid",
        "entitlement__entitlement_id": "uuid",
        # Requests link to their order through the entitlement; seller confirmations directly.
        "entitlement__delivery_order__delivery_order_id": "text",
        "delivery_order__delivery_order_id": "text",
    }
    list_select_related = ["recipient"]
    raw_id_fields = ["entitlement", "delivery_order", "intake"]
    readonly_fields = ["reference_id", "created_at", "delivered_at"]
    inlines = [DeliveryAttemptInline]


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(ExactSearchMixin, BigTableAdminMixin, RecordAdmin):
    list_display = ["message", "started_at", "http_status", "outcome", "duration_ms"]
    list_filter = ["outcome"]
    exact_search = {"message__reference_id": "uuid"}
    list_select_related = ["message"]
    raw_id_fields = ["message"]


@admin.register(StatusEvent)
class StatusEventAdmin(ExactSearchMixin, BigTableAdminMixin, RecordAdmin):
    list_display = [
        "entitlement",
        "portal",
        "from_status",
        "to_status",
        "cause",
        "effective_at",
        "recorded_at",
    ]
    list_filter = ["cause", ToStatusFilter]
    exact_search = {"entitlement__entitlement_id": "uuid"}
    list_select_related = ["entitlement", "portal"]
    raw_id_fields = ["entitlement"]


# --- Actions of outbound delivery and cancel/block, with confirmation pages: -------------
# entitlements/admin_actions.py (thin calls to services; docs/support-desk.md, "Actions").

OutboundMessageAdmin.actions = [resend_selected]
EntitlementAdmin.actions = [propose_cancel, propose_block]


# --- Chain clients: enrollment lookups and usage reconciliation. --------------------------


class EnrollmentLookupInline(admin.StackedInline):
    model = EnrollmentLookup
    extra = 0
    can_delete = False
    readonly_fields = [
        "state",
        "attempt_count",
        "next_attempt_at",
        "error_kind",
        "http_status",
        "last_error",
        "enrollment",
        "queued_at",
        "checked_at",
        "resolved_at",
    ]
    fields = readonly_fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.action(description="Check enrollment (look the student up again)")
def check_enrollment(modeladmin, request, queryset):
    from .services.enrollment import check_enrollments

    report = check_enrollments(queryset)
    modeladmin.message_user(
        request,
        f"{report.queued} enrollment(s) queued to be looked up now; "
        f"{report.already_resolved} already resolved; "
        f"{report.not_by_enrollment} not given by enrollmentId.",
    )


EntitlementAdmin.inlines = [*EntitlementAdmin.inlines, EnrollmentLookupInline]
EntitlementAdmin.actions = [*EntitlementAdmin.actions, check_enrollment]


@admin.register(EnrollmentLookup)
class EnrollmentLookupAdmin(RecordAdmin):
    list_display = [
        "entitlement",
        "state",
        "error_kind",
        "http_status",
        "attempt_count",
        "next_attempt_at",
        "checked_at",
    ]
    list_filter = ["state", "error_kind"]
    search_fields = ["=entitlement__entitlement_id", "entitlement__enrollment_id"]
    list_select_related = ["entitlement"]
    raw_id_fields = ["entitlement"]
    readonly_fields = EnrollmentLookupInline.readonly_fields


class UsageDifferenceInline(RecordInline):
    model = UsageDifference
    extra = 0
    can_delete = False
    readonly_fields = [
        "kind",
        "delivery_order_id",
        "entitlement_id",
        "field",
        "hub_value",
        "registry_value",
    ]
    fields = readonly_fields
    max_num = 0


@admin.register(UsageReconciliation)
class UsageReconciliationAdmin(RecordAdmin):
    list_display = [
        "contract_id",
        "licensor",
        "outcome",
        "difference_count",
        "http_status",
        "started_at",
    ]
    list_filter = ["outcome", "licensor"]
    search_fields = ["contract_id"]
    list_select_related = ["licensor"]
    readonly_fields = [
        "contract_id",
        "licensor",
        "started_at",
        "finished_at",
        "outcome",
        "error",
        "http_status",
        "difference_count",
        "hub_totals",
        "registry_totals",
    ]
    inlines = [UsageDifferenceInline]


@admin.register(UsageDifference)
class UsageDifferenceAdmin(RecordAdmin):
    list_display = [
        "reconciliation",
        "kind",
        "delivery_order_id",
        "entitlement_id",
        "field",
        "hub_value",
        "registry_value",
    ]
    list_filter = ["kind"]
    search_fields = ["delivery_order_id", "entitlement_id", "reconciliation__contract_id"]
    list_select_related = ["reconciliation"]
    raw_id_fields = ["reconciliation"]
