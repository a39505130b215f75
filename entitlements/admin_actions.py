"""The entitlement and message admin's actions, each with a confirmation page
(docs/support-desk.md, "Actions"): propose cancelled or blocked with an endDate, re-send
failed and stuck messages. Thin: parse the page's form, call one service, tell the user."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from aanspraak.admin_confirm import confirmation_page, confirmed

from .services.cancel import propose_end
from .services.resend import count_resendable, resend_messages
from .statuses import EntitlementStatus, EventCause


class EndDateForm(forms.Form):
    """The endDate of a proposed cancel or block (a date; today unless changed)."""

    end_date = forms.DateField(
        label="endDate",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="The entitlement's endDate in the proposal (YYYY-MM-DD).",
    )


def _propose(modeladmin, request, queryset, status: str):
    if confirmed(request):
        form = EndDateForm(request.POST)
    else:
        form = EndDateForm(initial={"end_date": timezone.localdate()})
    if not form.is_bound or not form.is_valid():
        selected = queryset.count()
        not_cancellable = (
            " A licensed entitlement cannot be cancelled (its licence was activated); "
            "block it instead."
            if status == EntitlementStatus.CANCELLED
            else ""
        )
        return confirmation_page(
            modeladmin,
            request,
            title=f"Propose {status}",
            intro=[
                f"{selected} entitlement(s) selected. The hub proposes {status} with this "
                "endDate to the product's licence registry and to every portal whose URL "
                "status is still live; the status changes when they confirm, and the "
                "timeline shows it with your name.",
                "Entitlements that cannot take it, or already have this proposal, are "
                "skipped." + not_cancellable,
            ],
            submit="Yes, propose",
            form=form,
        )
    end_date = form.cleaned_data["end_date"]
    result = propose_end(
        queryset, status, end_date, EventCause.ADMIN, requested_by=request.user.get_username()
    )
    modeladmin.message_user(
        request,
        f"Proposed {status} (endDate {end_date:%Y-%m-%d}) for {result.proposed} "
        f"entitlement(s) in {result.messages} message(s); the status changes when the "
        f"registry and portals confirm. {result.licensed} of the selection are licensed"
        + (" and cannot be cancelled." if status == EntitlementStatus.CANCELLED else "."),
        messages.SUCCESS,
    )
    return None


@admin.action(description="Propose cancelled (asks the endDate) to registry and portals")
def propose_cancel(modeladmin, request, queryset):
    """Propose cancelled, after a page that asks the endDate."""
    return _propose(modeladmin, request, queryset, EntitlementStatus.CANCELLED)


@admin.action(description="Propose blocked (asks the endDate) to registry and portals")
def propose_block(modeladmin, request, queryset):
    """Propose blocked, after a page that asks the endDate."""
    return _propose(modeladmin, request, queryset, EntitlementStatus.BLOCKED)


@admin.action(description="Re-send selected failed or stuck messages now")
def resend_selected(modeladmin, request, queryset):
    """Re-send the failed and stuck messages of the selection, after a confirmation page."""
    if not confirmed(request):
        selected, resendable = queryset.count(), count_resendable(queryset)
        return confirmation_page(
            modeladmin,
            request,
            title="Re-send messages",
            intro=[
                f"{selected} message(s) selected, of which {resendable} failed or stuck "
                "(pending after a failed attempt): those are sent again now, with a fresh "
                "retry horizon, the body rendered from the current data. Delivered and "
                "not yet tried messages are left as they are.",
            ],
            submit="Yes, re-send",
        )
    count = resend_messages(queryset, requested_by=request.user.get_username())
    modeladmin.message_user(
        request,
        f"{count} message(s) queued to be sent again; delivered and not yet tried ones "
        "were left as they are.",
        messages.SUCCESS,
    )
    return None
