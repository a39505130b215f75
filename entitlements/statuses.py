"""The enumerations of delivery orders, entitlements and outbound messages."""

from django.db import models


class DeliveryType(models.TextChoices):
    SCHOOL_STUDENTS = "school-students"
    SCHOOL_EMPLOYEES = "school-employees"
    SCHOOL_ACTIVATIONCODES = "school-activationcodes"
    CUSTOMER_USER = "customer-user"
    CUSTOMER_ACTIVATIONCODE = "customer-activationcode"


class DeliveryOrderStatus(models.TextChoices):
    ORDERED = "ordered"
    CANCELLED = "cancelled"


class EntitlementType(models.TextChoices):
    SCHOOL_STUDENT = "school-student"
    SCHOOL_EMPLOYEE = "school-employee"
    SCHOOL_ACTIVATIONCODE = "school-activationcode"
    CUSTOMER_STUDENT = "customer-student"
    CUSTOMER_ACTIVATIONCODE = "customer-activationcode"


ACTIVATION_CODE_TYPES = (
    EntitlementType.SCHOOL_ACTIVATIONCODE,
    EntitlementType.CUSTOMER_ACTIVATIONCODE,
)


class EntitlementStatus(models.TextChoices):
    CREATED = "created"
    ENTITLED = "entitled"
    LICENSED = "licensed"
    CANCELLED = "cancelled"
    BLOCKED = "blocked"
    EXPIRED = "expired"


# Statuses that carry an endDate (seed 002: "Mandatory field when the status changes to
# Cancelled or Blocked").
END_DATE_STATUSES = (EntitlementStatus.CANCELLED, EntitlementStatus.BLOCKED)


class UrlStatus(models.TextChoices):
    """The union of seed 002's and seed 003's URL statuses (see the seeds' README)."""

    UNINITIALIZED = "uninitialized"
    INITIALIZED = "initialized"
    PROCESSED = "processed"
    CANCELLED = "cancelled"
    BLOCKED = "blocked"
    EXPIRED = "expired"


class MessageKind(models.TextChoices):
    ENTITLEMENT_REQUEST = "entitlement-request"
    DELIVERYORDER_CONFIRMATION = "deliveryorder-confirmation"


class MessageState(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class ReconciliationOutcome(models.TextChoices):
    """What comparing a contract's usage at its registry with the hub's own figures found."""

    MATCHED = "matched"
    DIFFERENT = "different"
    FAILED = "failed"


class EventCause(models.TextChoices):
    INTAKE = "intake"
    DELIVERY = "delivery"
    CONFIRMATION = "confirmation"
    ACTIVATION = "activation"
    EXPIRY = "expiry"
    ADMIN = "admin"
