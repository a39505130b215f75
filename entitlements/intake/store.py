"""Storing a new order in one transaction: the order, its entitlements, URL statuses and
Entitlement requests, and the confirmation to the seller, with bulk inserts (COPY on
PostgreSQL). Sending happens after commit, in the dispatch workers."""

from __future__ import annotations

import datetime as dt
import json
import secrets

from django.db import transaction
from django.utils import timezone

from aanspraak.db.bulk import RawJson, insert_rows, uuid4_strings
from aanspraak.models import Party
from aanspraak.request_ids import current_request_id
from aanspraak.timestamps import rfc3339
from entitlements import outbox
from entitlements.models import (
    DeliveryOrder,
    DeliveryOrderIntake,
    DeliveryOrderPortal,
    Entitlement,
    EntitlementUrlStatus,
    OutboundMessage,
)
from entitlements.outbox.messages import MESSAGE_FIELDS, creation_rows
from entitlements.services import enrollment
from entitlements.statuses import (
    EntitlementStatus,
    MessageKind,
    UrlStatus,
)

from .contract import CODE_ALPHABET, CODE_GROUP_LENGTH, CODE_GROUPS, CONFIRMATION_OK
from .parse import ParsedOrder
from .resolve import resolve_portals, resolve_product, resolve_school
from .results import IntakeError, IntakeResult


def new_activation_code() -> str:
    """An unguessable activation code from the readable alphabet (``XXXX-XXXX-XXXX-XXXX``)."""
    groups = (
        "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_GROUP_LENGTH))
        for _ in range(CODE_GROUPS)
    )
    return "-".join(groups)


def confirmation_body(
    intake: DeliveryOrderIntake,
    order: DeliveryOrder,
    *,
    new_status: str,
    total: int,
    message: str,
    now: dt.datetime,
) -> dict:
    return {
        "deliveryOrderReferenceId": intake.reference_id,
        "deliveryOrderReceiveId": str(intake.receive_id),
        "deliveryOrderId": order.delivery_order_id,
        "productId": order.product.product_id,
        "processedTimestamp": rfc3339(now),
        "newStatus": new_status,
        "newTotalQuantity": total,
        "success": True,
        "status": CONFIRMATION_OK,
        "statusMessage": message,
    }


def queue_confirmation(intake: DeliveryOrderIntake, order: DeliveryOrder, body: dict) -> None:
    OutboundMessage.objects.create(
        kind=MessageKind.DELIVERYORDER_CONFIRMATION,
        recipient=order.seller,
        delivery_order=order,
        intake=intake,
        body=body,
        next_attempt_at=timezone.now(),
        request_id=current_request_id(),
    )


def store_new_order(seller: Party, parsed: ParsedOrder, body: dict) -> IntakeResult:
    school = resolve_school(parsed.school_ref)
    by_enrollment = sum(1 for user in parsed.people if "enrollmentId" in user)
    if by_enrollment and school.administration_id is None:
        raise IntakeError(
            [
                "deliveryOrder.deliverySpecification.students: students by enrollmentId need "
                "the school's administration system, and the registry names none for "
                f"school {school}"
            ]
        )
    product = resolve_product(parsed)
    portals = resolve_portals(parsed, school)
    now = timezone.now()
    school_ref = school.reference()
    with transaction.atomic():
        order = DeliveryOrder.objects.create(
            seller=seller,
            delivery_order_id=parsed.delivery_order_id,
            contract_id=parsed.contract_id,
            school=school,
            product=product,
            delivery_type=parsed.delivery_type,
            start_date=parsed.start_date,
            activation_until_date=parsed.activation_until_date,
            expiration_date=parsed.expiration_date,
        )
        DeliveryOrderPortal.objects.bulk_create(
            DeliveryOrderPortal(delivery_order=order, portal=p) for p in portals
        )
        intake = DeliveryOrderIntake.objects.create(
            seller=seller,
            reference_id=parsed.reference_id,
            delivery_order=order,
            action=DeliveryOrderIntake.Action.ORDER,
            body=body,
        )
        n = _insert_entitlements(order, parsed, school_ref, now)
        rows = list(
            Entitlement.objects.filter(delivery_order=order)
            .order_by("id")
            .values_list("id", "enrollment_id")
        )
        ids = [pk for pk, _ in rows]
        # Students by enrollmentId: their requests are created when the enrollment resolves
        # (entitlements.services.enrollment); until then nothing about them is sent.
        waiting = [pk for pk, enrollment_id in rows if enrollment_id is not None]
        _insert_requests(ids, product.licensor_id, portals, now, held=set(waiting))
        if waiting:
            enrollment.queue_lookups(waiting, now)
        body_out = confirmation_body(
            intake,
            order,
            new_status="processed",
            total=n,
            message=f"{n} entitlements created for {len(portals)} portal(s)",
            now=now,
        )
        queue_confirmation(intake, order, body_out)
        outbox.wake_after_commit({product.licensor_id, seller.id, *(p.id for p in portals)})
    return IntakeResult(
        parsed.reference_id,
        intake.receive_id,
        order.delivery_order_id,
        product.product_id,
        intake.action,
        repeated=False,
        total_quantity=n,
    )


def _insert_entitlements(
    order: DeliveryOrder, parsed: ParsedOrder, school_ref: dict, now: dt.datetime
) -> int:
    fields = (
        "entitlement_id",
        "delivery_order_id",
        "entitlement_type",
        "status",
        "user_master_identifier",
        "user_ids",
        "enrollment_id",
        "activation_code",
        "specification",
        "date_created",
        "date_last_modified",
    )
    etype, created = parsed.entitlement_type, EntitlementStatus.CREATED
    # Hot loop of up to 100,000 rows: constant parts encoded once (see aanspraak.db.bulk).
    stamp = now.isoformat()
    school_json = json.dumps(school_ref)
    ids = uuid4_strings(parsed.quantity)

    def rows():
        if parsed.people:
            for user in parsed.people:
                enrollment_id = user.get("enrollmentId")
                if enrollment_id is not None:
                    # No user yet: specification.user is set when the enrollment resolves.
                    spec = RawJson(f'{{"school": {school_json}}}')
                else:
                    spec = RawJson(f'{{"school": {school_json}, "user": {json.dumps(user)}}}')
                yield (
                    next(ids),
                    order.pk,
                    etype,
                    created,
                    user.get("userMasterIdentifier"),
                    user.get("userIds"),
                    enrollment_id,
                    None,
                    spec,
                    stamp,
                    stamp,
                )
        else:
            codes: set[str] = set()
            while len(codes) < parsed.quantity:
                codes.add(new_activation_code())
            for code in codes:
                spec = RawJson(f'{{"school": {school_json}, "activationCode": "{code}"}}')
                yield (
                    next(ids),
                    order.pk,
                    etype,
                    created,
                    None,
                    None,
                    None,
                    code,
                    spec,
                    stamp,
                    stamp,
                )

    return insert_rows(Entitlement, fields, rows())


def _insert_requests(
    entitlement_pks: list[int],
    licensor_id: int,
    portals: list[Party],
    now: dt.datetime,
    held: set[int] | None = None,
) -> None:
    """URL statuses of every entitlement, and the Entitlement requests of those not
    ``held`` (held: waiting for their enrollment)."""
    stamp = now.isoformat()
    insert_rows(
        EntitlementUrlStatus,
        ("entitlement_id", "portal_id", "status", "date_last_modified"),
        ((pk, p.id, UrlStatus.UNINITIALIZED, stamp) for pk in entitlement_pks for p in portals),
    )
    held = held or set()
    portal_pks = [p.id for p in portals]
    references = uuid4_strings(len(entitlement_pks) * (1 + len(portals)))
    rows = creation_rows(
        ((pk, licensor_id, portal_pks) for pk in entitlement_pks if pk not in held),
        stamp,
        references,
    )
    insert_rows(OutboundMessage, MESSAGE_FIELDS, rows)
