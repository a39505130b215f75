"""The intake's contract: limits, delivery types and the codes it generates (docs/delivery.md).

The parser and the OpenAPI serializers (``entitlements/api/schema.py``) both read these."""

from __future__ import annotations

from entitlements.statuses import (
    DeliveryType,
    EntitlementType,
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
