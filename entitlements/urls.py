"""URLs of the entitlements app."""

from django.urls import path

from entitlements.api.intake import DeliveryOrderIntakeView
from entitlements.api.read import DeliveryOrderEntitlementsView

urlpatterns: list = [
    path(
        "entitlements/deliveryorder/<str:id>",
        DeliveryOrderEntitlementsView.as_view(),
        name="deliveryorder-entitlements",
    ),
    path("deliveryorders", DeliveryOrderIntakeView.as_view(), name="deliveryorders"),
]
