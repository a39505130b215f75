"""Root URLs: the chain's API, the OAuth2 token endpoint, OpenAPI and the admin."""

from django.contrib import admin
from django.urls import path
from oauth2_provider import views as oauth2_views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("oauth2/token/", oauth2_views.TokenView.as_view(), name="oauth2-token"),
]
