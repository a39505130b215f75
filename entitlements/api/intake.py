"""``PUT /deliveryorders``: a seller hands the hub a delivery order (DESIGN.md §3.3)."""

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from aanspraak.api.caller import get_caller
from aanspraak.api.errors import ApiError
from aanspraak.choices import Scope
from entitlements.services.intake import IntakeError, receive_delivery_order


class DeliveryOrderIntakeView(APIView):
    """Accept a delivery order (or its cancellation): 202 once stored; the Entitlement
    requests and the seller's confirmation are sent asynchronously."""

    required_scopes = (Scope.ENTITLEMENT_SELLER,)

    def put(self, request):
        caller = get_caller(request)
        try:
            result = receive_delivery_order(caller.party, request.data)
        except IntakeError as exc:
            raise ApiError(exc.message, http_status=400, code=exc.code) from exc
        return Response(result.as_body(), status=status.HTTP_202_ACCEPTED)
