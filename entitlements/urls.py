"""URLs of the entitlements app."""

from django.urls import path

from entitlements.api.intake import DeliveryOrderIntakeView

urlpatterns: list = [
    path("deliveryorders", DeliveryOrderIntakeView.as_view(), name="deliveryorders"),
]
