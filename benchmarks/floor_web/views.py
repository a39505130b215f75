"""The floor views: a durable write, and an answer alone."""

import json

from django.http import HttpResponse

from .models import FloorConfirmation


def confirm(request):
    """``json.loads`` and one ORM insert of a confirmation-shaped row, then 202."""
    data = json.loads(request.body)
    FloorConfirmation.objects.create(
        sender_id=1,
        kind="entitlement",
        receive_id=data["entitlementReceiveId"],
        reference_id=data["entitlementReferenceId"],
        entitlement_id=data["entitlementId"],
        product_id=data["productId"],
        processed_timestamp=data["processedTimestamp"],
        body=data,
    )
    return HttpResponse(status=202)


def accepted(request):
    """Nothing but the 202: the cost of Django and gunicorn alone."""
    return HttpResponse(status=202)
