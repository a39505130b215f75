"""``PUT /entitlements/confirmations``, ``GET /entitlements/confirmations/{id}`` and
``PUT /usage/activation``: parse, check who may say what, store, answer 202."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response

from aanspraak.api.caller import Caller
from aanspraak.api.errors import Forbidden, NotFound, ScopeRequired
from aanspraak.api.schema import error_responses
from aanspraak.api.views import HubAPIView
from aanspraak.choices import Scope
from confirmations.selectors.outcome import confirmation_outcome
from confirmations.services.receive import receive_activation, receive_confirmation

from .schema import ConfirmationOutcomeSerializer
from .serializers import ActivationSerializer, ConfirmationSerializer
from .validation import validate_activation, validate_confirmation

_ACCEPTED = OpenApiResponse(
    description="Accepted: stored durably, applied asynchronously; no body. "
    "GET /entitlements/confirmations/{entitlementReceiveId} tells the outcome."
)
_PUT_ERRORS = error_responses(
    400,
    401,
    403,
    405,
    413,
    415,
    descriptions={
        400: "Bad Request: the body does not match the schema (status 11, the message names "
        "the field)",
        403: "Forbidden: the token lacks the scope for what is confirmed (status 21), or a "
        "portal names another portal (status 99)",
        405: "Method Not Allowed: only PUT",
    },
)


def accepted() -> HttpResponse:
    """The empty 202 (a plain Django response: DRF's rendering of nothing took 2 % of a
    confirmation's time); no Content-Type, as DRF leaves it out of an empty answer."""
    response = HttpResponse(status=202)
    del response["Content-Type"]
    return response


def check_confirmation_rights(caller: Caller, data: dict) -> str | None:
    """Who may confirm what: entitlement statuses need the licensor scope, URL statuses the
    portal scope and only for the caller's own portal. Returns the URL status's portal."""
    if "newEntitlementStatus" in data and Scope.ENTITLEMENT_LICENSOR not in caller.scopes:
        raise ScopeRequired(
            "newEntitlementStatus can only be confirmed by a licence registry "
            f"(scope {Scope.ENTITLEMENT_LICENSOR.value}); a portal confirms newUrlStatus."
        )
    if "newUrlStatus" not in data:
        return None
    own = caller.party.portal_id
    if Scope.ENTITLEMENT_PORTAL not in caller.scopes or not own:
        raise ScopeRequired(
            "newUrlStatus can only be confirmed by a portal "
            f"(scope {Scope.ENTITLEMENT_PORTAL.value}); a licence registry confirms "
            "newEntitlementStatus."
        )
    portal = data["newUrlStatus"].get("portal", own)
    if portal != own:
        raise Forbidden(
            f"newUrlStatus.portal: a portal may only confirm its own portal ({own}), not {portal}."
        )
    return portal


class ConfirmationView(HubAPIView):
    """A licence registry or portal confirms an entitlement (seed 003)."""

    required_scopes = (Scope.ENTITLEMENT_LICENSOR, Scope.ENTITLEMENT_PORTAL)

    @extend_schema(
        operation_id="confirm-entitlement",
        summary="Confirm Entitlement to Aanspraakmanager",
        description=(
            "As a `Licentieregistratie` or `Leermiddelenportaal` confirm an Entitlement to the "
            "`Aanspraakmanager`. A licence registry (scope `eduv.entitlement.licensor`) "
            "confirms `newEntitlementStatus`, a portal (scope `eduv.entitlement.portal`) "
            "`newUrlStatus` for its own portal. The hub answers 202 once the confirmation is "
            "stored and applies it asynchronously, in `processedTimestamp` order; a repeated "
            "`entitlementReceiveId` is a no-op."
        ),
        tags=["Aanspraakmanager"],
        request=ConfirmationSerializer,
        responses={202: _ACCEPTED, **_PUT_ERRORS},
    )
    def put(self, request):
        data = validate_confirmation(request.data)
        caller: Caller = request.caller
        portal = check_confirmation_rights(caller, data)
        receive_confirmation(
            sender=caller.party,
            client=caller.client,
            body=request.data,
            reference_id=data["entitlementReferenceId"],
            receive_id=data["entitlementReceiveId"],
            entitlement_id=data["entitlementId"],
            product_id=data["productId"],
            processed_timestamp=data["processedTimestamp"],
            new_entitlement_status=data.get("newEntitlementStatus"),
            url_portal=portal,
            new_url_status=data["newUrlStatus"]["urlStatus"] if portal else None,
        )
        return accepted()


class ConfirmationOutcomeView(HubAPIView):
    """The state of a confirmation (docs/confirmations.md, "Outcomes"), for its sender only."""

    required_scopes = (
        Scope.ENTITLEMENT_LICENSOR,
        Scope.ENTITLEMENT_PORTAL,
        Scope.USAGE_LICENSOR,
    )

    @extend_schema(
        operation_id="get-confirmation-outcome",
        summary="Get the outcome of a confirmation",
        description=(
            "The state of a confirmation (or initial activation) the caller sent: pending, "
            "applied, duplicate, stale or rejected, with the reason. Another party's "
            "confirmation answers 404, exactly like a missing one."
        ),
        tags=["Aanspraakmanager"],
        parameters=[
            OpenApiParameter(
                "entitlementReceiveId",
                str,
                OpenApiParameter.PATH,
                description="The entitlementReceiveId of the confirmation, or the "
                "initialActivationReferenceId of an initial activation.",
            )
        ],
        responses={
            200: OpenApiResponse(ConfirmationOutcomeSerializer, description="OK"),
            **error_responses(
                401,
                403,
                404,
                405,
                descriptions={
                    403: "Forbidden: the token has none of the scopes (status 21)",
                    404: "Not Found: no such confirmation from the caller",
                    405: "Method Not Allowed: only GET",
                },
            ),
        },
    )
    def get(self, request, entitlementReceiveId: str):
        receive_id = entitlementReceiveId
        row = confirmation_outcome(request.caller.party, receive_id)
        if row is None:
            raise NotFound(f"No confirmation with entitlementReceiveId {receive_id} from you.")
        return Response(
            {"entitlementReceiveId": row.receive_id, "state": row.state, "reason": row.reason}
        )


class ActivationView(HubAPIView):
    """A licence registry reports an initial activation (docs/confirmations.md)."""

    required_scopes = (Scope.USAGE_LICENSOR,)

    @extend_schema(
        operation_id="report-initial-activation",
        summary="Report an initial activation to the Aanspraakmanager",
        description=(
            "As a `Licentieregistratie` tell the `Aanspraakmanager` that a user activated an "
            "entitlement of one of its products. The hub answers 202 once stored and applies "
            "it asynchronously: the entitlement becomes `licensed` and, for activation codes, "
            "is bound to the user. A repeated `initialActivationReferenceId` is a no-op."
        ),
        tags=["Aanspraakmanager"],
        request=ActivationSerializer,
        responses={
            202: _ACCEPTED,
            **error_responses(
                400,
                401,
                403,
                405,
                413,
                415,
                descriptions={
                    400: _PUT_ERRORS[400].description,
                    403: "Forbidden: the token lacks the scope eduv.usage.licensor (status 21)",
                    405: "Method Not Allowed: only PUT",
                },
            ),
        },
    )
    def put(self, request):
        data = validate_activation(request.data)
        caller: Caller = request.caller
        receive_activation(
            sender=caller.party,
            client=caller.client,
            body=request.data,
            activation_reference_id=data["initialActivationReferenceId"],
            entitlement_id=data["entitlementId"],
            product_id=data["productId"],
            activation_timestamp=data["activationTimestamp"],
        )
        return accepted()
