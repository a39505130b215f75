"""Root URLs: the chain's API, the OAuth2 token endpoint, OpenAPI and the admin."""

from django.contrib import admin
from django.urls import include, path

from aanspraak.api.token import TokenView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("oauth2/token/", TokenView.as_view(), name="oauth2-token"),
    path("", include("aanspraak.urls")),
    path("", include("entitlements.urls")),
    path("", include("confirmations.urls")),
]

handler400 = "aanspraak.api.errors.handler400"
handler403 = "aanspraak.api.errors.handler403"
handler404 = "aanspraak.api.errors.handler404"
handler500 = "aanspraak.api.errors.handler500"
