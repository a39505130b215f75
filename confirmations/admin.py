"""Admin for received confirmations and activations, with who asked for the request each
answers; their re-queue action; and the entitlement's timeline page, which lives here
because it shows confirmations (the entitlements app links to it by URL name only)."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.template.response import TemplateResponse
from django.urls import path, reverse

from aanspraak.admin_confirm import confirmation_page, confirmed
from aanspraak.admin_paging import BigTableAdminMixin
from aanspraak.admin_records import RecordAdmin
from entitlements.models import Entitlement

from .models import Confirmation
from .selectors.search import confirmations_q
from .selectors.timeline import Link, entitlement_timeline
from .services.requeue import count_rejected, requeue_rejected


@admin.action(description="Re-queue selected rejected confirmations (after fixing the data)")
def requeue_selected(modeladmin, request, queryset):
    """Put the rejected confirmations of the selection back in the queue, after a
    confirmation page (docs/support-desk.md, "Actions")."""
    if not confirmed(request):
        selected, rejected = queryset.count(), count_rejected(queryset)
        return confirmation_page(
            modeladmin,
            request,
            title="Re-queue rejected confirmations",
            intro=[
                f"{selected} confirmation(s) selected, of which {rejected} rejected: those go "
                "back to pending and the worker checks and applies them again, against the "
                "data as it is now. Fix what made them fail first (the reason on each). "
                "Applied, duplicate, stale and pending ones are left as they are.",
            ],
            submit="Yes, re-queue",
        )
    count = requeue_rejected(queryset, requested_by=request.user.get_username())
    modeladmin.message_user(
        request,
        f"Re-queued {count} rejected confirmation(s); the worker applies them shortly.",
        messages.SUCCESS,
    )
    return None


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
        "requeued_by",
    ]
    list_filter = ["state", "kind", "sender", "new_entitlement_status", "new_url_status"]
    # Shows the search box; the search is confirmations_q's (exact, indexed).
    search_fields = ["receive_id"]
    list_select_related = ["sender", "message"]
    raw_id_fields = ["entitlement", "message", "client"]
    readonly_fields = ["received_at", "decided_at", "requested_by", "requeued_by", "requeued_at"]
    actions = [requeue_selected]

    def get_search_results(self, request, queryset, search_term):
        """By entitlementReceiveId or entitlementId, exact and indexed (docs/support-desk.md)."""
        q = confirmations_q(search_term)
        return (queryset if q is None else queryset.filter(q)), False

    @admin.display(description="request asked by")
    def requested_by(self, confirmation: Confirmation) -> str:
        """The staff user whose admin action made the request this answers (docs/security.md,
        "Audit"); empty when the hub made it itself."""
        return confirmation.message.requested_by if confirmation.message else ""


# --- The entitlement's timeline (docs/support-desk.md, "Timeline"). -----------------------


def _admin_url(link: Link) -> str:
    app_label, model_name = link.model.split(".")
    return reverse(f"admin:{app_label}_{model_name}_change", args=[link.pk])


def entitlement_timeline_view(request: HttpRequest, pk: int) -> TemplateResponse:
    """The timeline page of entitlement ``pk``: staff with view permission on entitlements."""
    site = admin.site
    if not site.get_model_admin(Entitlement).has_view_permission(request):
        raise PermissionDenied
    timeline = entitlement_timeline(pk)
    if timeline is None:
        raise Http404("no such entitlement")
    order = timeline.order
    context = {
        **site.each_context(request),
        "title": f"Timeline of entitlement {timeline.entitlement.entitlement_id}",
        "subtitle": None,
        "opts": Entitlement._meta,
        "timeline": timeline,
        "entitlement": timeline.entitlement,
        "order": order,
        "entries": [
            (row, [(link.text, _admin_url(link)) for link in row.links]) for row in timeline.rows
        ],
        "parties": [
            (
                "order",
                order.delivery_order_id,
                _admin_url(Link("", "entitlements.deliveryorder", order.pk)),
            ),
            ("seller", order.seller.name, _admin_url(Link("", "aanspraak.party", order.seller_id))),
            (
                "school",
                order.school.name,
                _admin_url(Link("", "aanspraak.school", order.school_id)),
            ),
            (
                "product",
                order.product.product_id,
                _admin_url(Link("", "aanspraak.product", order.product_id)),
            ),
            (
                "licence registry",
                order.product.licensor.name,
                _admin_url(Link("", "aanspraak.party", order.product.licensor_id)),
            ),
        ],
    }
    return TemplateResponse(request, "admin/confirmations/entitlement_timeline.html", context)


def _with_timeline(site_urls):
    """The admin site's URLs with the timeline first, at the entitlement's own path, so the
    entitlement's page can link to it by name (``admin:entitlements_entitlement_timeline``)
    without importing this app (the layers: docs/architecture.md, "Layout")."""

    def get_urls():
        return [
            path(
                "entitlements/entitlement/<int:pk>/timeline/",
                admin.site.admin_view(entitlement_timeline_view),
                name="entitlements_entitlement_timeline",
            ),
            *site_urls(),
        ]

    return get_urls


admin.site.get_urls = _with_timeline(admin.site.get_urls)
