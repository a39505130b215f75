"""OpenAPI building blocks every API view of the hub shares (drf-spectacular).

- ``StatusResponseSerializer`` and ``error_responses(...)``: the StatusResponse body of the
  error answers, e.g. ``@extend_schema(responses={200: X, **error_responses(400, 401, 403)})``;
- ``SchoolReferenceSerializer`` / ``UserReferenceSerializer``: the seeds' reference objects;
- ``ChainOAuth2Scheme``: the ``OAuth2`` security scheme (client credentials at
  ``/oauth2/token/``, the scopes of ``aanspraak.choices.Scope``); each operation requires the
  view's ``required_scopes`` (any of them, as ``HasChainScope`` checks);
- the postprocessing hooks of ``SPECTACULAR_SETTINGS``: ``non_blank_strings`` (what the hub
  means by a required string), ``at_least_one_of_fields`` (the alternatives registered with
  ``require_at_least_one_of``) and ``rate_limit_responses`` (the 429 of every authenticated
  operation, docs/api.md, "Rate limits").

The serializers here only document shapes; views validate with their own code.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from aanspraak.choices import FunctionalCode, OrganisationIdType, Scope, UserIdType

TOKEN_URL = "/oauth2/token/"
SCHEME_NAME = "OAuth2"
# A string the hub takes: at least one character that is not whitespace (the intake and the
# serializers strip it) and no NUL, which PostgreSQL cannot store (docs/api.md, "Errors").
NON_BLANK_PATTERN = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"

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
    429: "Too Many Requests: the client's rate limit is reached; Retry-After says when to try "
    f"again; nothing was stored (status {FunctionalCode.OTHER})",
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


class StrictOrganisationIdSerializer(OrganisationIdSerializer):
    class Meta:
        ref_name = "StrictOrganisationId"


class StrictSchoolReferenceSerializer(SchoolReferenceSerializer):
    """A SchoolReference of a message that refuses unknown fields (e.g. an initial
    activation)."""

    organisationIds = StrictOrganisationIdSerializer(many=True, required=False)

    class Meta:
        ref_name = "StrictSchoolReference"


class StrictUserIdSerializer(UserIdSerializer):
    class Meta:
        ref_name = "StrictUserId"


class StrictUserReferenceSerializer(UserReferenceSerializer):
    """A UserReference of a message that refuses unknown fields (e.g. an initial
    activation)."""

    userIds = StrictUserIdSerializer(many=True, required=False)

    class Meta:
        ref_name = "StrictUserReference"


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


def non_blank_strings(result: dict, generator, request, public) -> dict:
    """Every string that must not be blank (``minLength: 1``, drf-spectacular's
    ``ENFORCE_NON_BLANK_FIELDS``) and has no other form gets ``NON_BLANK_PATTERN``: the hub
    refuses a whitespace-only string or a NUL as it refuses an empty one (400, status 11)."""

    def walk(node) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            if (
                node.get("type") == "string"
                and node.get("minLength") == 1
                and not {"enum", "format", "pattern"} & set(node)
            ):
                node["pattern"] = NON_BLANK_PATTERN
            for value in node.values():
                walk(value)

    walk(result.get("components", {}).get("schemas", {}))
    walk(result.get("paths", {}))
    return result


# component name -> fields of which the hub requires at least one (present and not empty)
_AT_LEAST_ONE_OF: dict[str, tuple[str, ...]] = {}
# components whose serializer refuses fields it does not know (400)
_CLOSED: set[str] = set()


def require_known_fields_only(*components: str) -> None:
    """Document that the serializers of ``components`` refuse unknown fields
    (``additionalProperties: false``)."""
    _CLOSED.update(components)


def require_at_least_one_of(component: str, *fields: str) -> None:
    """Document that ``component`` needs at least one of ``fields`` (the serializer's
    ``validate`` refuses the others with 400), as an ``anyOf`` of the alternatives."""
    _AT_LEAST_ONE_OF[component] = fields


def at_least_one_of_fields(result: dict, generator, request, public) -> dict:
    """``anyOf: [{required: [a]}, {required: [b]}, ...]`` on the registered components; an
    array alternative counts only when it is not empty (``minItems: 1`` in its branch)."""
    schemas = result.get("components", {}).get("schemas", {})
    for component, fields in _AT_LEAST_ONE_OF.items():
        node = schemas.get(component)
        if node is None:
            continue
        branches = []
        for name in fields:
            branch: dict = {"required": [name]}
            if node["properties"][name].get("type") == "array":
                branch["properties"] = {name: {"minItems": 1}}
            branches.append(branch)
        node["anyOf"] = branches
    for component in _CLOSED:
        if component in schemas:
            schemas[component]["additionalProperties"] = False
    return result


def rate_limit_responses(result: dict, generator, request, public) -> dict:
    """A 429 with ``Retry-After`` and a StatusResponse on every operation that takes a token:
    the client's rate limit (``aanspraak/api/throttle.py``, docs/api.md, "Rate limits")."""
    body = {"$ref": "#/components/schemas/StatusResponse"}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or not operation.get("security"):
                continue
            operation["responses"]["429"] = {
                "description": _HTTP_REASONS[429],
                "headers": {
                    "Retry-After": {
                        "description": "Whole seconds until the next period of the limit.",
                        "schema": {"type": "integer", "minimum": 0},
                        "required": True,
                    }
                },
                "content": {"application/json": {"schema": body}},
            }
    return result


# The shared references (their serializers' validate() refuse neither).
require_at_least_one_of("SchoolReference", "organisationMasterIdentifier", "organisationIds")
require_at_least_one_of("UserReference", "userMasterIdentifier", "userIds")
require_at_least_one_of("StrictSchoolReference", "organisationMasterIdentifier", "organisationIds")
require_at_least_one_of("StrictUserReference", "userMasterIdentifier", "userIds")
require_known_fields_only(
    "StrictOrganisationId", "StrictSchoolReference", "StrictUserId", "StrictUserReference"
)
