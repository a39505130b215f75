"""Intake of delivery orders: ``PUT /deliveryorders`` (docs/delivery.md).

A message is validated completely before anything is read from or written to the database;
every problem names the field (``deliveryOrder.deliverySpecification.students[3]...``).
Then, in one transaction, the order, its entitlements (status ``created``), their URL
statuses (``uninitialized``, one per portal), the Entitlement requests to the licensor and
portals and the confirmation to the seller are stored with bulk inserts (COPY on
PostgreSQL). Sending happens after commit, in the dispatch workers.

Idempotency: the key is (seller, ``deliveryOrderReferenceId``). A repeated key is not
processed again; the confirmation to the seller is sent again. The same ``deliveryOrderId``
with a new key is accepted only unchanged (a re-send: confirmation again) or with
``"status": "cancelled"`` (a cancellation); any other change is refused.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from aanspraak.choices import OrganisationIdType, UserIdType
from aanspraak.models import Consent, Party, Product, School
from aanspraak.timestamps import rfc3339
from entitlements import dispatch
from entitlements.bulk import RawJson, insert_rows, uuid4_strings
from entitlements.models import (
    DeliveryOrder,
    DeliveryOrderIntake,
    DeliveryOrderPortal,
    Entitlement,
    EntitlementUrlStatus,
    OutboundMessage,
)
from entitlements.services import enrollment
from entitlements.services.cancel import MESSAGE_FIELDS, creation_rows, propose_end
from entitlements.statuses import (
    DeliveryOrderStatus,
    DeliveryType,
    EntitlementStatus,
    EntitlementType,
    EventCause,
    MessageKind,
    UrlStatus,
)

MAX_ENTITLEMENTS = 100_000
MAX_ID_LENGTH = 200
MAX_PROBLEMS_SHOWN = 10

# deliveryType -> (entitlementType, the deliverySpecification list of people, or None for
# activation codes, which come as {"quantity": N}).
DELIVERY_TYPES: dict[str, tuple[str, str | None]] = {
    DeliveryType.SCHOOL_STUDENTS: (EntitlementType.SCHOOL_STUDENT, "students"),
    DeliveryType.SCHOOL_EMPLOYEES: (EntitlementType.SCHOOL_EMPLOYEE, "employees"),
    DeliveryType.SCHOOL_ACTIVATIONCODES: (EntitlementType.SCHOOL_ACTIVATIONCODE, None),
    DeliveryType.CUSTOMER_USER: (EntitlementType.CUSTOMER_STUDENT, "users"),
    DeliveryType.CUSTOMER_ACTIVATIONCODE: (EntitlementType.CUSTOMER_ACTIVATIONCODE, None),
}
# The source specification misspells one type; both spellings are accepted.
DELIVERY_TYPE_ALIASES = {"customer-activatoncode": DeliveryType.CUSTOMER_ACTIVATIONCODE}
GROUP_TYPES = {"school-all", "school-admin", "school-studies", "school-subjects", "school-groups"}

# Activation codes: no 0/O, 1/I/L, U, so they survive being read aloud and typed; 16 symbols
# of 30 carry 78 bits, far beyond guessing; shown as XXXX-XXXX-XXXX-XXXX.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"
CODE_GROUPS, CODE_GROUP_LENGTH = 4, 4

# HTTP-like outcome in the confirmation's ``status`` (the chain defines no success code).
CONFIRMATION_OK = 200


class IntakeError(Exception):
    """The message is refused; nothing was stored. ``code`` is the chain's functional code."""

    def __init__(self, problems: list[str], code: int = 11):
        self.problems = problems
        self.code = code
        shown = problems[:MAX_PROBLEMS_SHOWN]
        more = len(problems) - len(shown)
        message = "; ".join(shown) + (f"; and {more} more problems" if more > 0 else "")
        super().__init__(message)

    @property
    def message(self) -> str:
        return str(self)


@dataclass
class IntakeResult:
    """What the 202 answer reports."""

    reference_id: str
    receive_id: uuid.UUID
    delivery_order_id: str
    product_id: str
    action: str
    repeated: bool
    total_quantity: int
    cancelled_quantity: int = 0
    licensed_quantity: int = 0

    @classmethod
    def repeat(cls, intake: DeliveryOrderIntake, order: DeliveryOrder, confirmation: dict):
        """The answer to a message that repeats an earlier one, whose seller confirmation
        (``confirmation``) is being sent again."""
        return cls(
            intake.reference_id,
            intake.receive_id,
            order.delivery_order_id,
            order.product.product_id,
            intake.action,
            repeated=True,
            total_quantity=confirmation.get("newTotalQuantity", 0),
            cancelled_quantity=confirmation.get("cancelledQuantity", 0),
            licensed_quantity=confirmation.get("licensedQuantity", 0),
        )

    def as_body(self) -> dict:
        body = {
            "deliveryOrderReferenceId": self.reference_id,
            "deliveryOrderReceiveId": str(self.receive_id),
            "deliveryOrderId": self.delivery_order_id,
            "productId": self.product_id,
            "action": self.action,
            "repeated": self.repeated,
            "totalQuantity": self.total_quantity,
        }
        if self.action == DeliveryOrderIntake.Action.CANCEL:
            body["cancelledQuantity"] = self.cancelled_quantity
            body["licensedQuantity"] = self.licensed_quantity
        return body


# --- Parsing (no database) -------------------------------------------------------------------


@dataclass
class ParsedOrder:
    reference_id: str
    delivery_order_id: str
    status: str
    raw_order: dict
    end_date: dt.date | None = None
    product_id: str | None = None
    contract_id: str | None = None
    delivery_type: str = ""
    entitlement_type: str = ""
    school_ref: dict = field(default_factory=dict)
    people: list[dict] = field(default_factory=list)
    quantity: int = 0
    portal_ids: list[str] | None = None
    start_date: dt.date | None = None
    activation_until_date: dt.date | None = None
    expiration_date: dt.date | None = None

    @property
    def is_cancel(self) -> bool:
        return self.status == DeliveryOrderStatus.CANCELLED


class _Problems:
    def __init__(self):
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}")

    def raise_if_any(self) -> None:
        if self.items:
            raise IntakeError(self.items)


def _string(
    obj: dict, key: str, path: str, problems: _Problems, *, required: bool, max_length: int
) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            problems.add(f"{path}.{key}", "is required")
        return None
    if not isinstance(value, str) or not value.strip():
        problems.add(f"{path}.{key}", "must be a non-empty string")
        return None
    if len(value) > max_length:
        problems.add(f"{path}.{key}", f"must be at most {max_length} characters")
        return None
    return value


def _date(obj: dict, key: str, path: str, problems: _Problems, *, required: bool):
    value = obj.get(key)
    if value is None:
        if required:
            problems.add(f"{path}.{key}", "is required (a date YYYY-MM-DD)")
        return None
    if isinstance(value, str) and len(value) == 10:
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    problems.add(f"{path}.{key}", f"must be a date YYYY-MM-DD, got {json.dumps(value)[:40]}")
    return None


def _school_ref(value: Any, path: str, problems: _Problems) -> dict:
    if not isinstance(value, dict):
        problems.add(path, "is required: a SchoolReference object")
        return {}
    ref: dict = {}
    master = value.get("organisationMasterIdentifier")
    if master is not None:
        if isinstance(master, str) and master.strip() and len(master) <= MAX_ID_LENGTH:
            ref["organisationMasterIdentifier"] = master
        else:
            problems.add(f"{path}.organisationMasterIdentifier", "must be a non-empty string")
    ids = value.get("organisationIds")
    if ids is not None:
        if not isinstance(ids, list) or not ids:
            problems.add(f"{path}.organisationIds", "must be a non-empty list")
        else:
            clean = []
            for i, item in enumerate(ids):
                p = f"{path}.organisationIds[{i}]"
                if not isinstance(item, dict):
                    problems.add(p, "must be an object with organisationId and organisationIdType")
                    continue
                oid, otype = item.get("organisationId"), item.get("organisationIdType")
                if not isinstance(oid, str) or not oid.strip():
                    problems.add(f"{p}.organisationId", "must be a non-empty string")
                elif otype not in OrganisationIdType.values:
                    problems.add(
                        f"{p}.organisationIdType",
                        f"must be one of {', '.join(OrganisationIdType.values)}",
                    )
                else:
                    clean.append({"organisationId": oid, "organisationIdType": otype})
            ref["organisationIds"] = clean
    if master is None and ids is None:
        problems.add(path, "needs organisationMasterIdentifier or organisationIds")
    return ref


def _enrollment_ref(item: dict, path: str, problems: _Problems, allowed: bool) -> dict | None:
    """``{"enrollmentId": ...}``: a student the hub resolves through the school's
    administration system (seed 004) before anything is sent about it."""
    if not allowed:
        problems.add(
            f"{path}.enrollmentId",
            "an enrollmentId names a student of a school: only school-students may use it",
        )
        return None
    if set(item) != {"enrollmentId"}:
        problems.add(path, "give either enrollmentId alone or a UserReference, not both")
        return None
    value = item["enrollmentId"]
    if not isinstance(value, str) or not value.strip():
        problems.add(f"{path}.enrollmentId", "must be a non-empty string")
        return None
    if len(value) > MAX_ID_LENGTH:
        problems.add(f"{path}.enrollmentId", f"must be at most {MAX_ID_LENGTH} characters")
        return None
    return {"enrollmentId": value}


def _user_ref(
    item: Any, path: str, problems: _Problems, *, enrollment_allowed: bool = False
) -> dict | None:
    """A UserReference (``userMasterIdentifier`` and/or ``userIds``) or, for students of a
    school, ``{"enrollmentId": ...}``."""
    if not isinstance(item, dict):
        problems.add(path, "must be a UserReference object")
        return None
    if "enrollmentId" in item:
        return _enrollment_ref(item, path, problems, enrollment_allowed)
    user: dict = {}
    master = item.get("userMasterIdentifier")
    if master is not None:
        if isinstance(master, str) and master.strip() and len(master) <= 500:
            user["userMasterIdentifier"] = master
        else:
            problems.add(f"{path}.userMasterIdentifier", "must be a non-empty string")
            return None
    ids = item.get("userIds")
    if ids is not None:
        if not isinstance(ids, list) or not ids:
            problems.add(f"{path}.userIds", "must be a non-empty list")
            return None
        clean = []
        for i, uid in enumerate(ids):
            p = f"{path}.userIds[{i}]"
            if not isinstance(uid, dict):
                problems.add(p, "must be an object with userId and userIdType")
                return None
            value, kind = uid.get("userId"), uid.get("userIdType")
            if not isinstance(value, str) or not value.strip():
                problems.add(f"{p}.userId", "must be a non-empty string")
                return None
            if kind not in UserIdType.values:
                problems.add(f"{p}.userIdType", f"must be one of {', '.join(UserIdType.values)}")
                return None
            clean.append({"userId": value, "userIdType": kind})
        user["userIds"] = clean
    if not user:
        problems.add(path, "missing person: needs userMasterIdentifier or userIds")
        return None
    return user


def _person_key(user: dict) -> str:
    if "enrollmentId" in user:
        return "e:" + user["enrollmentId"]
    if "userMasterIdentifier" in user:
        return "m:" + user["userMasterIdentifier"]
    return "i:" + json.dumps(sorted((u["userIdType"], u["userId"]) for u in user["userIds"]))


def parse_delivery_order(body: Any) -> ParsedOrder:
    """Validate the structure of a ``PUT /deliveryorders`` body (no database access).
    Raises IntakeError naming every problem found."""
    problems = _Problems()
    if not isinstance(body, dict):
        raise IntakeError(
            ["the body must be a JSON object with deliveryOrderReferenceId and deliveryOrder"]
        )
    reference_id = _string(
        body, "deliveryOrderReferenceId", "body", problems, required=True, max_length=MAX_ID_LENGTH
    )
    order = body.get("deliveryOrder")
    if not isinstance(order, dict):
        problems.add("deliveryOrder", "is required: a DeliveryOrder object")
        problems.raise_if_any()
    p = "deliveryOrder"
    delivery_order_id = _string(
        order, "deliveryOrderId", p, problems, required=True, max_length=MAX_ID_LENGTH
    )
    status = order.get("status", DeliveryOrderStatus.ORDERED)
    if status not in DeliveryOrderStatus.values:
        problems.add(f"{p}.status", f"must be one of {', '.join(DeliveryOrderStatus.values)}")
    problems.items = [i.replace("body.", "", 1) for i in problems.items]
    if problems.items:
        problems.raise_if_any()
    parsed = ParsedOrder(
        reference_id=reference_id or "",
        delivery_order_id=delivery_order_id or "",
        status=status,
        raw_order=order,
    )
    if parsed.is_cancel:
        parsed.end_date = _date(order, "endDate", p, problems, required=True)
        if "productId" in order:
            parsed.product_id = _string(
                order, "productId", p, problems, required=True, max_length=MAX_ID_LENGTH
            )
        problems.raise_if_any()
        return parsed

    parsed.contract_id = _string(
        order, "contractId", p, problems, required=False, max_length=MAX_ID_LENGTH
    )
    parsed.product_id = _string(
        order, "productId", p, problems, required=True, max_length=MAX_ID_LENGTH
    )
    dtype = order.get("deliveryType")
    dtype = DELIVERY_TYPE_ALIASES.get(dtype, dtype)
    if dtype is None:
        problems.add(f"{p}.deliveryType", "is required")
    elif dtype in GROUP_TYPES:
        problems.add(
            f"{p}.deliveryType",
            f"{dtype} is not supported: it needs group data (classes, studies, subjects) that "
            "the hub does not fetch; send the students, employees or activation codes instead",
        )
    elif dtype not in DELIVERY_TYPES:
        problems.add(
            f"{p}.deliveryType",
            f"must be one of {', '.join(DELIVERY_TYPES)} (got {json.dumps(dtype)[:60]})",
        )
    buyer = order.get("buyer")
    if not isinstance(buyer, dict):
        problems.add(f"{p}.buyer", "is required: an object with school")
    else:
        parsed.school_ref = _school_ref(buyer.get("school"), f"{p}.buyer.school", problems)
    parsed.start_date = _date(order, "startDate", p, problems, required=True)
    parsed.activation_until_date = _date(order, "activationUntilDate", p, problems, required=True)
    parsed.expiration_date = _date(order, "expirationDate", p, problems, required=False)
    start, until, expiry = parsed.start_date, parsed.activation_until_date, parsed.expiration_date
    if start and until and until < start:
        problems.add(f"{p}.activationUntilDate", f"{until} is before startDate {start}")
    if expiry and start and expiry < start:
        problems.add(f"{p}.expirationDate", f"{expiry} is before startDate {start}")
    elif expiry and until and expiry < until:
        problems.add(f"{p}.expirationDate", f"{expiry} is before activationUntilDate {until}")
    portals = order.get("portals")
    if portals is not None:
        if not isinstance(portals, list) or not all(
            isinstance(x, str) and x.strip() for x in portals
        ):
            problems.add(f"{p}.portals", "must be a list of portal identifiers (strings)")
        elif len(set(portals)) != len(portals):
            problems.add(f"{p}.portals", "lists a portal twice")
        else:
            parsed.portal_ids = list(portals)

    spec = order.get("deliverySpecification")
    sp = f"{p}.deliverySpecification"
    if dtype in DELIVERY_TYPES:
        parsed.delivery_type = dtype
        parsed.entitlement_type, list_key = DELIVERY_TYPES[dtype]
        if not isinstance(spec, dict):
            problems.add(sp, "is required: an object")
        elif list_key is None:
            quantity = spec.get("quantity")
            if isinstance(quantity, bool) or not isinstance(quantity, int):
                problems.add(f"{sp}.quantity", "is required: a whole number of activation codes")
            elif not 1 <= quantity <= MAX_ENTITLEMENTS:
                problems.add(f"{sp}.quantity", f"must be between 1 and {MAX_ENTITLEMENTS}")
            else:
                parsed.quantity = quantity
        else:
            people = spec.get(list_key)
            lp = f"{sp}.{list_key}"
            if not isinstance(people, list) or not people:
                problems.add(lp, "is required: a non-empty list of UserReference objects")
            elif len(people) > MAX_ENTITLEMENTS:
                problems.add(lp, f"has {len(people)} entries; at most {MAX_ENTITLEMENTS}")
            else:
                seen: dict[str, int] = {}
                for i, item in enumerate(people):
                    user = _user_ref(
                        item,
                        f"{lp}[{i}]",
                        problems,
                        enrollment_allowed=dtype == DeliveryType.SCHOOL_STUDENTS,
                    )
                    if user is None:
                        if len(problems.items) > MAX_PROBLEMS_SHOWN * 5:
                            break  # enough to fix first; do not build a huge message
                        continue
                    key = _person_key(user)
                    if key in seen:
                        problems.add(f"{lp}[{i}]", f"is the same person as {lp}[{seen[key]}]")
                        continue
                    seen[key] = i
                    parsed.people.append(user)
                parsed.quantity = len(parsed.people)
    problems.raise_if_any()
    return parsed


# --- Resolving against the registry ----------------------------------------------------------


def _resolve_school(ref: dict) -> School:
    query = Q()
    if "organisationMasterIdentifier" in ref:
        query |= Q(organisation_master_identifier=ref["organisationMasterIdentifier"])
    for oid in ref.get("organisationIds", []):
        query |= Q(
            organisation_ids__organisation_id=oid["organisationId"],
            organisation_ids__organisation_id_type=oid["organisationIdType"],
        )
    schools = list(School.objects.filter(query).distinct().prefetch_related("organisation_ids")[:2])
    if not schools:
        raise IntakeError(
            [f"deliveryOrder.buyer.school: unknown school {json.dumps(ref)}"], code=23
        )
    if len(schools) > 1:
        raise IntakeError(
            ["deliveryOrder.buyer.school: the identifiers given name different schools"]
        )
    return schools[0]


def _resolve_portals(parsed: ParsedOrder, school: School) -> list[Party]:
    if parsed.portal_ids is None:
        # Default: every portal the school consented to.
        return list(Party.objects.filter(is_portal=True, consented_schools=school).order_by("id"))
    found = {
        p.portal_id: p
        for p in Party.objects.filter(is_portal=True, portal_id__in=parsed.portal_ids).annotate(
            consented=Exists(Consent.objects.filter(school=school, party=OuterRef("pk")))
        )
    }
    for i, portal_id in enumerate(parsed.portal_ids):
        if portal_id not in found:
            raise IntakeError([f"deliveryOrder.portals[{i}]: unknown portal {portal_id}"], code=23)
        if not found[portal_id].consented:
            raise IntakeError(
                [
                    f"deliveryOrder.portals[{i}]: the school has not consented that portal "
                    f"{portal_id} receives its entitlement data"
                ],
                code=22,
            )
    return [found[p] for p in parsed.portal_ids]


def _resolve_product(parsed: ParsedOrder) -> Product:
    product = Product.objects.select_related("licensor").filter(product_id=parsed.product_id)
    found = product.first()
    if found is None:
        raise IntakeError([f"deliveryOrder.productId: unknown product {parsed.product_id}"])
    return found


# --- Storing ----------------------------------------------------------------------------------


def new_activation_code() -> str:
    """An unguessable activation code from the readable alphabet (``XXXX-XXXX-XXXX-XXXX``)."""
    groups = (
        "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_GROUP_LENGTH))
        for _ in range(CODE_GROUPS)
    )
    return "-".join(groups)


def _confirmation_body(
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


def _queue_confirmation(intake: DeliveryOrderIntake, order: DeliveryOrder, body: dict) -> None:
    OutboundMessage.objects.create(
        kind=MessageKind.DELIVERYORDER_CONFIRMATION,
        recipient=order.seller,
        delivery_order=order,
        intake=intake,
        body=body,
        next_attempt_at=timezone.now(),
    )


def _store_new_order(seller: Party, parsed: ParsedOrder, body: dict) -> IntakeResult:
    school = _resolve_school(parsed.school_ref)
    by_enrollment = sum(1 for user in parsed.people if "enrollmentId" in user)
    if by_enrollment and school.administration_id is None:
        raise IntakeError(
            [
                "deliveryOrder.deliverySpecification.students: students by enrollmentId need "
                "the school's administration system, and the registry names none for "
                f"school {school}"
            ]
        )
    product = _resolve_product(parsed)
    portals = _resolve_portals(parsed, school)
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
        body_out = _confirmation_body(
            intake,
            order,
            new_status="processed",
            total=n,
            message=f"{n} entitlements created for {len(portals)} portal(s)",
            now=now,
        )
        _queue_confirmation(intake, order, body_out)
        dispatch.wake_after_commit({product.licensor_id, seller.id, *(p.id for p in portals)})
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
    # Hot loop of up to 100,000 rows: constant parts encoded once (see entitlements.bulk).
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


def _repeat(intake: DeliveryOrderIntake) -> IntakeResult:
    """A repeated deliveryOrderReferenceId: nothing is processed again; the confirmation to
    the seller is queued once more (a new message with the same body)."""
    order = intake.delivery_order
    previous = (
        OutboundMessage.objects.filter(intake=intake, kind=MessageKind.DELIVERYORDER_CONFIRMATION)
        .order_by("id")
        .first()
    )
    with transaction.atomic():
        if previous is not None:
            _queue_confirmation(intake, order, previous.body)
        dispatch.wake_after_commit({order.seller_id})
    return IntakeResult.repeat(intake, order, previous.body if previous is not None else {})


def _resend_unchanged(
    seller: Party, parsed: ParsedOrder, order: DeliveryOrder, body: dict
) -> IntakeResult:
    """The same order again under a new reference id: record it and confirm again."""
    first = order.intakes.filter(action=DeliveryOrderIntake.Action.ORDER).order_by("id").first()
    if first is None or _canonical(first.body.get("deliveryOrder")) != _canonical(parsed.raw_order):
        raise IntakeError(
            [
                f"deliveryOrder.deliveryOrderId: delivery order {order.delivery_order_id} "
                "already exists with different content; a delivery order cannot be changed: "
                'cancel it ("status": "cancelled" with an endDate) and send a new one'
            ]
        )
    now = timezone.now()
    with transaction.atomic():
        intake = DeliveryOrderIntake.objects.create(
            seller=seller,
            reference_id=parsed.reference_id,
            delivery_order=order,
            action=DeliveryOrderIntake.Action.ORDER,
            body=body,
        )
        total = order.entitlements.count()
        confirmation = _confirmation_body(
            intake,
            order,
            new_status=(
                "cancelled" if order.status == DeliveryOrderStatus.CANCELLED else "processed"
            ),
            total=total,
            message=f"delivery order already received: {total} entitlements",
            now=now,
        )
        _queue_confirmation(intake, order, confirmation)
        dispatch.wake_after_commit({seller.id})
    return IntakeResult.repeat(intake, order, confirmation)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _cancel(seller: Party, parsed: ParsedOrder, body: dict) -> IntakeResult:
    now = timezone.now()
    with transaction.atomic():
        order = (
            DeliveryOrder.objects.select_for_update(of=("self",))
            .select_related("product")
            .filter(seller=seller, delivery_order_id=parsed.delivery_order_id)
            .first()
        )
        if order is None:
            raise IntakeError(
                [
                    f"deliveryOrder.deliveryOrderId: no delivery order {parsed.delivery_order_id}"
                    " of this seller to cancel"
                ]
            )
        if parsed.product_id is not None and parsed.product_id != order.product.product_id:
            raise IntakeError(
                [
                    f"deliveryOrder.productId: delivery order {order.delivery_order_id} is for "
                    f"product {order.product.product_id}, not {parsed.product_id}"
                ]
            )
        intake = DeliveryOrderIntake.objects.create(
            seller=seller,
            reference_id=parsed.reference_id,
            delivery_order=order,
            action=DeliveryOrderIntake.Action.CANCEL,
            body=body,
        )
        if order.status == DeliveryOrderStatus.CANCELLED:
            return _cancel_again(intake, order)
        proposal = propose_end(
            order.entitlements.all(),
            EntitlementStatus.CANCELLED,
            parsed.end_date,
            EventCause.INTAKE,
        )
        order.status = DeliveryOrderStatus.CANCELLED
        order.end_date = parsed.end_date
        order.save(update_fields=["status", "end_date", "updated_at"])
        # Students whose enrollment never resolved were sent to no one: the hub cancels
        # them itself (under this order lock, so the resolver cannot release them after).
        unresolved = enrollment.cancel_unresolved([order.pk], now)
        licensed = proposal.licensed
        cancelled = proposal.proposed + unresolved
        new_status = "cancelled" if cancelled or not licensed else "licensed"
        message = (
            f"{proposal.proposed} entitlements proposed cancelled with endDate "
            f"{order.end_date}"
            + (f", {unresolved} never sent cancelled by the hub" if unresolved else "")
            + f"; {licensed} already licensed and not cancelled"
        )
        out = _confirmation_body(
            intake, order, new_status=new_status, total=licensed, message=message, now=now
        )
        out["cancelledQuantity"] = cancelled
        out["licensedQuantity"] = licensed
        _queue_confirmation(intake, order, out)
        dispatch.wake_after_commit({seller.id, *proposal.recipients})
    return IntakeResult(
        parsed.reference_id,
        intake.receive_id,
        order.delivery_order_id,
        order.product.product_id,
        intake.action,
        repeated=False,
        total_quantity=licensed,
        cancelled_quantity=cancelled,
        licensed_quantity=licensed,
    )


def _cancel_again(intake: DeliveryOrderIntake, order: DeliveryOrder) -> IntakeResult:
    """A cancellation of an order that is already cancelled (a new reference id): nothing
    is proposed again and the seller gets the outcome of the first cancellation again (its
    confirmation body, under this message's reference and receive ids), so the two answers
    never disagree. Called inside _cancel's transaction."""
    first = (
        OutboundMessage.objects.filter(
            delivery_order=order,
            kind=MessageKind.DELIVERYORDER_CONFIRMATION,
            intake__action=DeliveryOrderIntake.Action.CANCEL,
        )
        .order_by("id")
        .first()
    )
    body = dict(first.body) if first is not None else {}
    body["deliveryOrderReferenceId"] = intake.reference_id
    body["deliveryOrderReceiveId"] = str(intake.receive_id)
    _queue_confirmation(intake, order, body)
    dispatch.wake_after_commit({order.seller_id})
    return IntakeResult.repeat(intake, order, body)


def receive_delivery_order(seller: Party, body: Any) -> IntakeResult:
    """Handle one ``PUT /deliveryorders`` body from ``seller``. Raises IntakeError (nothing
    stored) for bad input."""
    parsed = parse_delivery_order(body)
    for attempt in (1, 2):
        try:
            return _receive(seller, parsed, body)
        except IntegrityError:
            # A concurrent request with the same reference or order id won the race (or, in
            # theory, an activation code collided): the second pass sees its rows.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _receive(seller: Party, parsed: ParsedOrder, body: dict) -> IntakeResult:
    intake = (
        DeliveryOrderIntake.objects.select_related("delivery_order__product")
        .filter(seller=seller, reference_id=parsed.reference_id)
        .first()
    )
    if intake is not None:
        return _repeat(intake)
    if parsed.is_cancel:
        return _cancel(seller, parsed, body)
    existing = (
        DeliveryOrder.objects.select_related("product")
        .filter(seller=seller, delivery_order_id=parsed.delivery_order_id)
        .first()
    )
    if existing is not None:
        return _resend_unchanged(seller, parsed, existing, body)
    return _store_new_order(seller, parsed, body)
