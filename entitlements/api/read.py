"""``GET /entitlements/deliveryorder/{id}`` (seed 002): the entitlements of one delivery order
that the caller may read, streamed as a JSON array."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import closing

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions

from aanspraak.api.caller import get_caller
from aanspraak.api.errors import ConsentRequired, NotFound, SchemaError
from aanspraak.api.schema import error_responses
from aanspraak.api.views import HubAPIView
from aanspraak.choices import Scope
from entitlements.api.schema import EntitlementSerializer
from entitlements.selectors.deliveryorders import (
    ConsentMissing,
    DeliveryOrderNotVisible,
    entitlement_json,
    visible_orders,
)

MAX_ID_LENGTH = 200  # DeliveryOrder.delivery_order_id's column
NO_NUL_PATTERN = r"^[^\u0000]*$"  # PostgreSQL stores no NUL: no order can have one
ROWS_PER_WRITE = 500  # entitlements per chunk handed to the server


def stream_json_array(chunks: Generator[list[str], None, None]) -> Iterator[bytes]:
    """``[item, item, ...]`` from chunks of JSON texts, written ROWS_PER_WRITE items at a time:
    never the whole array at once, and no per-item work but the join. Nothing is written
    before the first chunk is read, so ``Primed`` can run the query inside the view."""
    # closing: a client that goes away mid-answer ends the query and its transaction now,
    # not whenever the generator is collected.
    with closing(chunks):
        separator = b"["
        for chunk in chunks:
            for start in range(0, len(chunk), ROWS_PER_WRITE):
                yield separator + ",".join(chunk[start : start + ROWS_PER_WRITE]).encode()
                separator = b","
        yield b"[]" if separator == b"[" else b"]"


class Primed:
    """A streamed body whose first write is produced before the answer starts: the query
    runs, and its first chunk (CHUNK_SIZE entitlements) is read, inside the view. A database
    that is away is then the view's 503 (docs/api.md, "Errors"), not a 200 whose body breaks
    off; an order of at most CHUNK_SIZE entitlements is read whole before anything is sent.
    ``close`` (Django calls it when the answer ends) closes the generator."""

    def __init__(self, body: Generator[bytes, None, None]):
        self.body = body
        self.head = next(body)  # stream_json_array always yields at least "[]"

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        yield from self.body

    def close(self) -> None:
        self.body.close()


class DeliveryOrderEntitlementsView(HubAPIView):
    required_scopes = (
        Scope.ENTITLEMENT_SELLER,
        Scope.ENTITLEMENT_LICENSOR,
        Scope.ENTITLEMENT_PORTAL,
        Scope.ENTITLEMENT_DASHBOARD,
    )
    # GET only (HEAD follows GET); OPTIONS too answers 405.
    http_method_names = ["get", "head"]

    def perform_authentication(self, request) -> None:
        # The method is checked before the token: a wrong method is 405 for everyone.
        if request.method.lower() not in self.http_method_names:
            raise exceptions.MethodNotAllowed(request.method)
        super().perform_authentication(request)

    @extend_schema(
        operation_id="get-entitlements-by-delivery-order",
        summary="Get Entitlements by DeliveryOrder",
        description=(
            "Retrieve all entitlements of a deliveryOrder that the caller may read: a seller "
            "the orders it placed, a licence registry the entitlements of its products, a "
            "portal or dashboard the orders of schools that gave it consent (403 with status "
            "22 otherwise). Activation codes are shown to the seller and licensor only. An "
            "order the caller may not see answers 404, like a missing one."
        ),
        tags=["Aanspraakmanager"],
        parameters=[
            OpenApiParameter(
                "id",
                {"type": "string", "maxLength": MAX_ID_LENGTH, "pattern": NO_NUL_PATTERN},
                OpenApiParameter.PATH,
                description="The deliveryOrderId for which entitlement information is requested "
                f"(any id PUT /deliveryorders takes: at most {MAX_ID_LENGTH} characters, no NUL; "
                "400 otherwise).",
            )
        ],
        responses={
            200: OpenApiResponse(EntitlementSerializer(many=True), description="OK"),
            **error_responses(400, 401, 403, 404, 405),
        },
    )
    def get(self, request, id: str):
        # Any id the intake stores can be read back (docs/delivery.md): the same rule, no
        # narrower one (a tab or a no-break space was once refused here; tests/fuzz).
        if len(id) > MAX_ID_LENGTH or "\x00" in id:
            raise SchemaError(
                f"id: a deliveryOrderId is at most {MAX_ID_LENGTH} characters, without NUL."
            )
        caller = get_caller(request)
        try:
            orders = visible_orders(caller.party, caller.scopes, id)
        except ConsentMissing as exc:
            raise ConsentRequired(
                f"The school of delivery order {id} has given {caller.party.name} no consent "
                "to receive its entitlement data."
            ) from exc
        except DeliveryOrderNotVisible as exc:
            raise NotFound(f"No delivery order {id} is known to {caller.party.name}.") from exc
        body = stream_json_array(entitlement_json(orders))
        if request.method == "HEAD":
            # No body is sent: the generator is never started and the query never run.
            return StreamingHttpResponse(body, content_type="application/json")
        return StreamingHttpResponse(Primed(body), content_type="application/json")
