"""Parsing a ``PUT /deliveryorders`` body with no database access; every problem names its
field (``deliveryOrder.deliverySpecification.students[3]...``). Hand-written for speed
(docs/decisions/0002-hand-written-intake-parser.md)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from aanspraak.choices import OrganisationIdType, UserIdType
from entitlements.statuses import (
    DeliveryOrderStatus,
    DeliveryType,
)

from .contract import (
    DELIVERY_TYPE_ALIASES,
    DELIVERY_TYPES,
    GROUP_TYPES,
    MAX_ENTITLEMENTS,
    MAX_ID_LENGTH,
    MAX_PROBLEMS_SHOWN,
)
from .results import IntakeError


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


def _nul_characters(body: dict) -> list[str]:
    """The paths of the strings (values or keys) that hold a NUL character (``\\u0000``):
    PostgreSQL's text and jsonb cannot store one, so it is refused here, by name, instead of
    failing the insert (a 500). One pass over the body, with no recursion."""
    found: list[str] = []
    stack: list[tuple[str, Any]] = [("body", body)]
    while stack and len(found) < MAX_PROBLEMS_SHOWN:
        path, value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                found.append(path)
        elif isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    found.append(f"{path} (a key)")
                stack.append((f"{path}.{key}" if path != "body" else key, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
    return sorted(found)


def parse_delivery_order(body: Any) -> ParsedOrder:
    """Validate the structure of a ``PUT /deliveryorders`` body (no database access).
    Raises IntakeError naming every problem found."""
    problems = _Problems()
    if not isinstance(body, dict):
        raise IntakeError(
            ["the body must be a JSON object with deliveryOrderReferenceId and deliveryOrder"]
        )
    if nul := _nul_characters(body):
        raise IntakeError([f"{path}: must not contain a NUL character (\\u0000)" for path in nul])
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
    raw_type = order.get("deliveryType")
    # Not a string (e.g. an object, found by tests/fuzz): refused like an unknown type, never
    # looked up (an object is unhashable: it was a 500).
    dtype = DELIVERY_TYPE_ALIASES.get(raw_type, raw_type) if isinstance(raw_type, str) else None
    if raw_type is None:
        problems.add(f"{p}.deliveryType", "is required")
    elif dtype is None:
        problems.add(
            f"{p}.deliveryType",
            f"must be one of {', '.join(DELIVERY_TYPES)} (got {json.dumps(raw_type)[:60]})",
        )
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
