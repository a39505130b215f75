"""The intermediate page of an admin action that asks before it acts (docs/support-desk.md,
"Actions"): the selection is carried through the page as hidden fields, the form (an
endDate, or nothing) is shown with its errors, and the action runs when the page is
submitted with ``confirm``. The admin's own delete confirmation works the same way."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.http import HttpRequest
from django.template.response import TemplateResponse

CONFIRM = "confirm"


def confirmed(request: HttpRequest) -> bool:
    """Whether the action's request is the submitted confirmation page (not the "Go")."""
    return CONFIRM in request.POST


def confirmation_page(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    *,
    title: str,
    intro: list[str],
    submit: str,
    form: forms.Form | None = None,
) -> TemplateResponse:
    """The page asking to confirm the action of ``request`` on its selection, in the admin's
    look; ``intro`` are its paragraphs, ``submit`` the button's text. Posting it goes back to
    the changelist (same URL, so the same filters) with the same action and selection."""
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "subtitle": None,
        "opts": opts,
        "intro": intro,
        "form": form,
        "submit": submit,
        "confirm_name": CONFIRM,
        "action": request.POST.get("action", ""),
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across") == "1",
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/action_confirmation.html", context)
