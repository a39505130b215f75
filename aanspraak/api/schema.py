"""OpenAPI building blocks every API view of the hub shares (drf-spectacular).

- ``StatusResponseSerializer`` and ``error_responses(...)``: the StatusResponse body of the
  error answers, e.g. ``@extend_schema(responses={200: X, **error_responses(400, 401, 403)})``;
- ``SchoolReferenceSerializer`` / ``UserReferenceSerializer``: the seeds' reference objects;
- ``ChainOAuth2Scheme``: the ``OAuth2`` security scheme (client credentials at
  ``/oauth2/token/``, the scopes of ``aanspraak.choices.Scope``); each operation requires the
  view's ``required_scopes`` (any of them, as ``HasChainScope`` checks).

The serializers here only document shapes; views validate with their own code.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from aanspraak.choices import FunctionalCode, OrganisationIdType, Scope, UserIdType

TOKEN_URL = "/oauth2/token/"
SCHEME_NAME = "OAuth2"

_HTTP_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large: the body is over the endpoint's limit (HUB_MAX_BODY_BYTES, for "
    f"delivery orders HUB_MAX_ORDER_BYTES); nothing was stored (status {FunctionalCode.OTHER})",
    415: "Unsupported Media Type: the body must be JSON "
    f"(status {FunctionalCode.SCHEMA_INCORRECT})",
    500: "Internal Server Error",
}


class StatusResponseSerializer(serializers.Serializer):
    """Functional status code and status message (the body of every error)."""

    status = serializers.IntegerField(
        help_text="Functional status code: "
        + ", ".join(f"{code.value} {code.meaning}" for code in FunctionalCode)
        + "."
    )
    statusMessage = serializers.CharField(required=False, help_text="Human-readable explanation.")

    class Meta:
        ref_name = "StatusResponse"


def error_responses(*codes: int, descriptions: dict[int, str] | None = None) -> dict:
    """``{code: OpenApiResponse(StatusResponse)}`` for the given HTTP error codes."""
    descriptions = descriptions or {}
    return {
        code: OpenApiResponse(
            response=StatusResponseSerializer,
            description=descriptions.get(code, _HTTP_REASONS.get(code, "Error")),
        )
        for code in codes
    }


class OrganisationIdSerializer(serializers.Serializer):
    organisationId = serializers.CharField()
    organisationIdType = serializers.ChoiceField(choices=OrganisationIdType.values)

    class Meta:
        ref_name = "OrganisationId"


class SchoolReferenceSerializer(serializers.Serializer):
    """A reference to a School organisation (either organisationMasterIdentifier or
    organisationIds is required)."""

    organisationMasterIdentifier = serializers.CharField(
        required=False, help_text="The OnderwijsaanbiederId of the school."
    )
    organisationIds = OrganisationIdSerializer(many=True, required=False)

    class Meta:
        ref_name = "SchoolReference"


class UserIdSerializer(serializers.Serializer):
    userId = serializers.CharField()
    userIdType = serializers.ChoiceField(choices=UserIdType.values)

    class Meta:
        ref_name = "UserId"


class UserReferenceSerializer(serializers.Serializer):
    """A reference to a user (either userMasterIdentifier, the ECK iD of a student, or userIds
    is required; employees have userIds only)."""

    userMasterIdentifier = serializers.CharField(required=False)
    userIds = UserIdSerializer(many=True, required=False)

    class Meta:
        ref_name = "UserReference"


class ChainOAuth2Scheme(OpenApiAuthenticationExtension):
    """The seeds' ``OAuth2`` security scheme for DOT's bearer authentication."""

    target_class = "aanspraak.api.authentication.CachedBearerAuthentication"
    name = SCHEME_NAME
    priority = 1  # above drf-spectacular's own DjangoOAuthToolkitScheme

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "oauth2",
            "description": "OAuth2 client credentials: a client gets only the scopes it was "
            "registered with (all of them when it asks for none).",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": TOKEN_URL,
                    "scopes": {scope.value: scope.label for scope in Scope},
                }
            },
        }

    def get_security_requirement(self, auto_schema) -> dict:
        return {self.name: sorted(getattr(auto_schema.view, "required_scopes", ()))}
