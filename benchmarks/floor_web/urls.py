from django.urls import path

from . import views

urlpatterns = [
    path("entitlements/confirmations", views.confirm),
    path("accepted", views.accepted),
]
