"""URLs of the aanspraak app: health and metrics, the Licentieregistratie's endpoints (405 on
the hub) and the OpenAPI schema with its Swagger UI."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from aanspraak import operations

# Registers the OAuth2 security scheme extension before any schema is generated.
from aanspraak.api import schema as _schema  # noqa: F401
from aanspraak.api.provided_elsewhere import UsageContractView, UsageSchoolUserView

urlpatterns = [
    # Health and metrics (docs/operations.md): outside the chain's API and its document.
    path("healthz", operations.healthz, name="healthz"),
    path("readyz", operations.readyz, name="readyz"),
    path("metrics", operations.metrics, name="metrics"),
    path("usage/school/user", UsageSchoolUserView.as_view(), name="usage-school-user"),
    path("usage/contracts/<str:id>", UsageContractView.as_view(), name="usage-contract"),
    path("api/schema/", SpectacularAPIView.as_view(), name="openapi-schema"),
    path(
        "api/docs/", SpectacularSwaggerView.as_view(url_name="openapi-schema"), name="openapi-docs"
    ),
]
