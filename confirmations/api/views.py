"""``PUT /entitlements/confirmations``, ``GET /entitlements/confirmations/{id}`` and
``PUT /usage/activation``: parse, check who may say what, store, answer 202."""

from __future__ import annotations

from rest_framework.response import Response
from rest_framework.views import APIView

from aanspraak.api.caller import Caller
from aanspraak.api.errors import Forbidden, NotFound, ScopeRequired
from aanspraak.choices import Scope
from confirmations.selectors.outcome import confirmation_outcome
from confirmations.services.receive import receive_activation, receive_confirmation

from .serializers import ActivationSerializer, ConfirmationSerializer


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


class ConfirmationView(APIView):
    """A licence registry or portal confirms an entitlement (seed 003)."""

    required_scopes = (Scope.ENTITLEMENT_LICENSOR, Scope.ENTITLEMENT_PORTAL)

    def put(self, request):
        serializer = ConfirmationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
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
        return Response(status=202)


class ConfirmationOutcomeView(APIView):
    """The state of a confirmation (DESIGN.md §3.5), for its sender only."""

    required_scopes = (
        Scope.ENTITLEMENT_LICENSOR,
        Scope.ENTITLEMENT_PORTAL,
        Scope.USAGE_LICENSOR,
    )

    def get(self, request, receive_id: str):
        row = confirmation_outcome(request.caller.party, receive_id)
        if row is None:
            raise NotFound(f"No confirmation with entitlementReceiveId {receive_id} from you.")
        return Response(
            {"entitlementReceiveId": row.receive_id, "state": row.state, "reason": row.reason}
        )


class ActivationView(APIView):
    """A licence registry reports an initial activation (DESIGN.md §3.4a)."""

    required_scopes = (Scope.USAGE_LICENSOR,)

    def put(self, request):
        serializer = ActivationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
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
        return Response(status=202)
