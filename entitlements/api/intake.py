"""``PUT /deliveryorders``: a seller hands the hub a delivery order (docs/delivery.md)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from aanspraak.api.caller import get_caller
from aanspraak.api.errors import ApiError
from aanspraak.api.schema import error_responses
from aanspraak.api.views import HubAPIView
from aanspraak.choices import Scope
from entitlements.api.schema import DeliveryOrderAcceptedSerializer, DeliveryOrderMessageSerializer
from entitlements.intake import IntakeError, receive_delivery_order


class DeliveryOrderIntakeView(HubAPIView):
    """Accept a delivery order (or its cancellation): 202 once stored; the Entitlement
    requests and the seller's confirmation are sent asynchronously."""

    required_scopes = (Scope.ENTITLEMENT_SELLER,)

    @extend_schema(
        operation_id="put-delivery-order",
        summary="Place or cancel a DeliveryOrder",
        description=(
            "As a `Bestelomgeving leermiddelen` hand the `Aanspraakmanager` a delivery order "
            "for one product, or cancel one (`status: cancelled` with `endDate`). The hub "
            "answers 202 once the order, its entitlements (status `created`) and the "
            "Entitlement requests to the licence registry and portals are stored; they are "
            "readable at once through GET /entitlements/deliveryorder/{id}. The requests and "
            "the confirmation to the seller (`PUT {seller}/deliveryorders/confirmations`) are "
            "sent asynchronously. On any error nothing is stored."
        ),
        tags=["Aanspraakmanager"],
        request=DeliveryOrderMessageSerializer,
        responses={
            202: OpenApiResponse(DeliveryOrderAcceptedSerializer, description="Accepted"),
            **error_responses(
                400,
                401,
                403,
                405,
                413,
                415,
                descriptions={
                    400: "Bad Request: the message names every problem by path (status 11); "
                    "an unknown school or portal (status 23); a portal without the school's "
                    "consent (status 22)",
                    403: "Forbidden: the token lacks the scope eduv.entitlement.seller (status 21)",
                    405: "Method Not Allowed: only PUT",
                },
            ),
        },
    )
    def put(self, request):
        caller = get_caller(request)
        try:
            result = receive_delivery_order(caller.party, request.data)
        except IntakeError as exc:
            raise ApiError(exc.message, http_status=400, code=exc.code) from exc
        return Response(result.as_body(), status=status.HTTP_202_ACCEPTED)
