"""URLs of the confirmations app."""

from django.urls import path

from .api.views import ActivationView, ConfirmationOutcomeView, ConfirmationView

urlpatterns = [
    path("entitlements/confirmations", ConfirmationView.as_view(), name="confirmations"),
    path(
        "entitlements/confirmations/<str:entitlementReceiveId>",
        ConfirmationOutcomeView.as_view(),
        name="confirmation-outcome",
    ),
    path("usage/activation", ActivationView.as_view(), name="usage-activation"),
]
