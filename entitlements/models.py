"""Delivery orders, their entitlements and URL statuses, the hub's outbound messages and the
history of every status change."""

import uuid

from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Now

from aanspraak.choices import AttemptOutcome
from aanspraak.models import Party, Product, School

from .statuses import (
    ACTIVATION_CODE_TYPES,
    END_DATE_STATUSES,
    DeliveryOrderStatus,
    DeliveryType,
    EntitlementStatus,
    EntitlementType,
    EventCause,
    MessageKind,
    MessageState,
    ReconciliationOutcome,
    UrlStatus,
)

# Every status but expired: the entitlements the expiry sweep may still have to touch (its
# partial index, entitlement_unexpired_idx, holds only these).
NOT_EXPIRED_STATUSES = tuple(s for s in EntitlementStatus.values if s != EntitlementStatus.EXPIRED)


class DeliveryOrder(models.Model):
    """One delivery order of one product for one school, as placed by a seller."""

    seller = models.ForeignKey(Party, on_delete=models.PROTECT, related_name="delivery_orders")
    delivery_order_id = models.CharField(max_length=200)
    contract_id = models.CharField(max_length=200, null=True, blank=True)
    school = models.ForeignKey(School, on_delete=models.PROTECT, related_name="delivery_orders")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="delivery_orders")
    delivery_type = models.CharField(max_length=40, choices=DeliveryType.choices)
    start_date = models.DateField()
    activation_until_date = models.DateField()
    expiration_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    status = models.CharField(
        max_length=20, choices=DeliveryOrderStatus.choices, default=DeliveryOrderStatus.ORDERED
    )
    portals = models.ManyToManyField(
        Party, through="DeliveryOrderPortal", related_name="portal_delivery_orders"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["seller", "delivery_order_id"], name="deliveryorder_unique_per_seller"
            ),
            models.CheckConstraint(
                condition=Q(delivery_type__in=DeliveryType.values),
                name="deliveryorder_type_valid",
            ),
            models.CheckConstraint(
                condition=Q(status__in=DeliveryOrderStatus.values),
                name="deliveryorder_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(activation_until_date__gte=F("start_date")),
                name="deliveryorder_activation_after_start",
            ),
            models.CheckConstraint(
                condition=Q(expiration_date__isnull=True) | Q(expiration_date__gte=F("start_date")),
                name="deliveryorder_expiration_after_start",
            ),
            models.CheckConstraint(
                condition=~Q(status=DeliveryOrderStatus.CANCELLED) | Q(end_date__isnull=False),
                name="deliveryorder_cancelled_has_end_date",
            ),
        ]
        indexes = [
            models.Index(fields=["delivery_order_id"], name="deliveryorder_doid_idx"),
            models.Index(fields=["expiration_date"], name="deliveryorder_expiration_idx"),
            models.Index(fields=["contract_id"], name="deliveryorder_contract_idx"),
        ]

    def __str__(self) -> str:
        return self.delivery_order_id


class DeliveryOrderPortal(models.Model):
    """A portal that receives the entitlements of a delivery order."""

    delivery_order = models.ForeignKey(DeliveryOrder, on_delete=models.CASCADE)
    portal = models.ForeignKey(Party, on_delete=models.PROTECT)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["delivery_order", "portal"], name="deliveryorderportal_unique"
            ),
        ]

    def __str__(self) -> str:
        # Read in the order's page (the portals inline, which loads the portal with it).
        return str(self.portal)


class DeliveryOrderIntake(models.Model):
    """One received ``PUT /deliveryorders`` message: the idempotency key of intake."""

    class Action(models.TextChoices):
        ORDER = "order"
        CANCEL = "cancel"

    seller = models.ForeignKey(Party, on_delete=models.PROTECT, related_name="intakes")
    reference_id = models.CharField(max_length=200, help_text="deliveryOrderReferenceId")
    receive_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    delivery_order = models.ForeignKey(
        DeliveryOrder, on_delete=models.CASCADE, related_name="intakes"
    )
    action = models.CharField(max_length=10, choices=Action.choices)
    body = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["seller", "reference_id"], name="intake_reference_unique_per_seller"
            ),
            models.CheckConstraint(
                condition=Q(action__in=["order", "cancel"]), name="intake_action_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.reference_id


class Entitlement(models.Model):
    """One entitlement: one product for one student, employee or activation code."""

    entitlement_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    delivery_order = models.ForeignKey(
        DeliveryOrder, on_delete=models.PROTECT, related_name="entitlements"
    )
    entitlement_type = models.CharField(max_length=40, choices=EntitlementType.choices)
    status = models.CharField(
        max_length=20, choices=EntitlementStatus.choices, default=EntitlementStatus.CREATED
    )
    end_date = models.DateField(null=True, blank=True)
    user_master_identifier = models.CharField(
        max_length=500, null=True, blank=True, help_text="ECK iD of a student"
    )
    user_ids = models.JSONField(null=True, blank=True, help_text="UserReference.userIds")
    enrollment_id = models.CharField(max_length=200, null=True, blank=True)
    # Unique by a constraint in Meta (no extra LIKE index: codes are looked up whole).
    activation_code = models.CharField(max_length=64, null=True, blank=True)
    specification = models.JSONField(
        default=dict, blank=True, help_text="entitlementSpecification as served in seed 002"
    )
    # processedTimestamp of the confirmation that set the current status (for ordering).
    status_changed_at = models.DateTimeField(null=True, blank=True)
    date_created = models.DateTimeField(auto_now_add=True)
    date_last_modified = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(entitlement_type__in=EntitlementType.values),
                name="entitlement_type_valid",
            ),
            models.CheckConstraint(
                condition=Q(status__in=EntitlementStatus.values),
                name="entitlement_status_valid",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=END_DATE_STATUSES) | Q(end_date__isnull=False),
                name="entitlement_end_date_when_ended",
            ),
            models.CheckConstraint(
                condition=~Q(entitlement_type__in=ACTIVATION_CODE_TYPES)
                | Q(activation_code__isnull=False),
                name="entitlement_code_types_have_code",
            ),
            models.CheckConstraint(
                condition=Q(entitlement_type__in=ACTIVATION_CODE_TYPES)
                | Q(user_master_identifier__isnull=False)
                | Q(user_ids__isnull=False)
                | Q(enrollment_id__isnull=False),
                name="entitlement_user_types_have_user",
            ),
            models.UniqueConstraint(
                fields=["activation_code"], name="entitlement_activation_code_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["user_master_identifier"], name="entitlement_eckid_idx"),
            # An order's entitlements newest first (the support desk's list of a searched or
            # filtered order: ORDER BY id DESC LIMIT 100). With the foreign key's index alone
            # the planner walks the primary key backwards and filters, 0.5 s for an old order
            # at national size (docs/support-desk.md, "At national size").
            models.Index(fields=["delivery_order", "id"], name="entitlement_order_id_idx"),
            # The support search (entitlements/selectors/search.py): an enrollmentId, a
            # userId. Partial: most entitlements have neither, so intake pays little.
            models.Index(
                fields=["enrollment_id"],
                condition=Q(enrollment_id__isnull=False),
                name="entitlement_enrollment_idx",
            ),
            GinIndex(
                fields=["user_ids"],
                opclasses=["jsonb_path_ops"],
                condition=Q(user_ids__isnull=False),
                name="entitlement_userids_idx",
            ),
            # The expiry sweep reads the not-yet-expired entitlements of one expired order;
            # expired ones leave the index, so a sweep never re-reads past work. One column:
            # the planner discounts the heap order of a two-column index and would sort.
            models.Index(
                fields=["delivery_order"],
                condition=Q(status__in=NOT_EXPIRED_STATUSES),
                name="entitlement_unexpired_idx",
            ),
        ]

    def __str__(self) -> str:
        return str(self.entitlement_id)


class EntitlementUrlStatus(models.Model):
    """The state of an entitlement's access URL at one portal."""

    # No single-column indexes: (entitlement, portal) is unique, which indexes both lookups
    # the hub makes; fewer indexes keep intake's bulk inserts fast.
    entitlement = models.ForeignKey(
        Entitlement, on_delete=models.CASCADE, related_name="url_statuses", db_index=False
    )
    portal = models.ForeignKey(Party, on_delete=models.PROTECT, related_name="+", db_index=False)
    status = models.CharField(
        max_length=20, choices=UrlStatus.choices, default=UrlStatus.UNINITIALIZED
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    date_last_modified = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "URL status"
        verbose_name_plural = "URL statuses"
        constraints = [
            models.UniqueConstraint(fields=["entitlement", "portal"], name="urlstatus_unique"),
            models.CheckConstraint(
                condition=Q(status__in=UrlStatus.values), name="urlstatus_status_valid"
            ),
        ]

    def __str__(self) -> str:
        # "Portal Zuid: processed": how a row reads in the entitlement's page (its inline
        # loads the portal with the row).
        return f"{self.portal}: {self.status}"


class OutboundMessage(models.Model):
    """A message the hub sends to another party: an Entitlement request (to a registry or
    portal) or a delivery-order confirmation (to the seller)."""

    reference_id = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False, help_text="entitlementReferenceId"
    )
    kind = models.CharField(max_length=40, choices=MessageKind.choices)
    # Indexes are chosen for the hot paths (intake inserts hundreds of thousands of rows):
    # the recipient is indexed with the pending ones only, and the order and intake links
    # (set on seller confirmations only) by partial indexes in Meta.
    recipient = models.ForeignKey(
        Party, on_delete=models.PROTECT, related_name="inbox", db_index=False
    )
    entitlement = models.ForeignKey(
        Entitlement, on_delete=models.CASCADE, null=True, blank=True, related_name="messages"
    )
    delivery_order = models.ForeignKey(
        DeliveryOrder,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="messages",
        db_index=False,
    )
    intake = models.ForeignKey(
        DeliveryOrderIntake,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    proposed_entitlement_status = models.CharField(
        max_length=20, choices=EntitlementStatus.choices, null=True, blank=True
    )
    proposed_url_status = models.CharField(
        max_length=20, choices=UrlStatus.choices, null=True, blank=True
    )
    proposed_end_date = models.DateField(null=True, blank=True)
    body = models.JSONField(null=True, blank=True, help_text="The body as last sent")
    state = models.CharField(
        max_length=20, choices=MessageState.choices, default=MessageState.PENDING
    )
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the message was (last) put in the queue: the retry horizon runs from here, and a
    # re-send from the admin sets it again. A database default, so bulk inserts (COPY) that
    # name their columns get it too.
    queued_at = models.DateTimeField(db_default=Now())
    delivered_at = models.DateTimeField(null=True, blank=True)
    # Who, by name, made the hub send it (docs/security.md, "Audit"): the staff user whose
    # admin action proposed it (cancel, block), and who last re-sent it; empty when the hub
    # sent it on its own. Names, not foreign keys: kept when the account is gone.
    requested_by = models.CharField(max_length=150, blank=True, db_default="")
    resent_by = models.CharField(max_length=150, blank=True, db_default="")
    # The X-Request-ID of the request that created it (an intake, an admin action), so the
    # delivery worker's log line names it (docs/operations.md, "Logs"); NULL when a worker
    # created it, and on messages from before this column.
    request_id = models.CharField(max_length=200, null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=MessageKind.values), name="message_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(state__in=MessageState.values), name="message_state_valid"
            ),
            models.CheckConstraint(
                condition=~Q(kind=MessageKind.ENTITLEMENT_REQUEST)
                | (
                    Q(entitlement__isnull=False)
                    & (
                        Q(proposed_entitlement_status__isnull=False)
                        | Q(proposed_url_status__isnull=False)
                    )
                ),
                name="message_request_has_entitlement_and_proposal",
            ),
            models.CheckConstraint(
                condition=~Q(kind=MessageKind.DELIVERYORDER_CONFIRMATION)
                | Q(delivery_order__isnull=False),
                name="message_confirmation_has_order",
            ),
        ]
        indexes = [
            # The drain claims one recipient's due messages in (next_attempt_at, id) order:
            # the whole sort key, so a claim of 100 reads 100 rows, not every due one.
            models.Index(
                fields=["recipient", "next_attempt_at", "id"],
                condition=Q(state="pending"),
                name="message_pending_claim_idx",
            ),
            # The failed messages per recipient, for the gauge of GET /metrics
            # (entitlements/selectors/metrics.py): a scrape reads these entries only.
            models.Index(
                fields=["recipient"], condition=Q(state="failed"), name="message_failed_idx"
            ),
            models.Index(
                fields=["delivery_order"],
                condition=Q(delivery_order__isnull=False),
                name="message_delivery_order_idx",
            ),
            models.Index(
                fields=["intake"], condition=Q(intake__isnull=False), name="message_intake_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.reference_id} → {self.recipient_id}"


class DeliveryAttempt(models.Model):
    """One try to deliver an outbound message."""

    message = models.ForeignKey(OutboundMessage, on_delete=models.CASCADE, related_name="attempts")
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=AttemptOutcome.choices)
    error = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome__in=AttemptOutcome.values), name="attempt_outcome_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} at {self.started_at:%Y-%m-%d %H:%M:%S}: {self.outcome}"


class StatusEvent(models.Model):
    """A change of an entitlement's status (portal empty) or of its URL status at a portal.

    ``cause_pk`` points at the confirmation or message that caused it; it is not a foreign key
    because confirmations depend on entitlements, never the other way round.
    """

    # Indexed by the timeline index (entitlement, recorded_at) in Meta only.
    entitlement = models.ForeignKey(
        Entitlement, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    portal = models.ForeignKey(
        Party, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    cause = models.CharField(max_length=20, choices=EventCause.choices)
    cause_pk = models.BigIntegerField(null=True, blank=True)
    cause_ref = models.CharField(max_length=200, blank=True)
    effective_at = models.DateTimeField(help_text="When the change became effective")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(cause__in=EventCause.values), name="statusevent_cause_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["entitlement", "recorded_at"], name="statusevent_timeline_idx"),
        ]

    def __str__(self) -> str:
        # "created → entitled", or "Portal Zuid: uninitialized → initialized" for a URL
        # status (the entitlement's inline loads the portal with the row).
        change = f"{self.from_status or '-'} → {self.to_status}"
        return f"{self.portal}: {change}" if self.portal_id else change


class EnrollmentLookup(models.Model):
    """The resolution of an entitlement given as ``{"enrollmentId": ...}`` to its student,
    through the school's administration system (seed 004). While it is not ``resolved`` the
    entitlement has no user and none of its Entitlement requests exist (they are created
    when it resolves), so nothing about it leaves the hub."""

    class State(models.TextChoices):
        PENDING = "pending"
        RESOLVED = "resolved"
        FAILED = "failed"

    entitlement = models.OneToOneField(
        Entitlement, on_delete=models.CASCADE, related_name="enrollment_lookup"
    )
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    error_kind = models.CharField(max_length=40, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    enrollment = models.JSONField(
        null=True, blank=True, help_text="The Enrollment as the administration system answered"
    )
    queued_at = models.DateTimeField(
        help_text="Start of the current round of attempts (the retry horizon counts from it)"
    )
    checked_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["pending", "resolved", "failed"]),
                name="enrollmentlookup_state_valid",
            ),
            models.CheckConstraint(
                condition=~Q(state="resolved") | Q(resolved_at__isnull=False),
                name="enrollmentlookup_resolved_has_time",
            ),
        ]
        indexes = [
            # The resolver claims in (next_attempt_at, id) order: the whole sort key.
            models.Index(
                fields=["next_attempt_at", "id"],
                condition=Q(state="pending"),
                name="enrollmentlookup_claim_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"enrollment lookup of {self.entitlement_id}: {self.state}"


class UsageReconciliation(models.Model):
    """One comparison of a contract's usage at a licence registry (seed 001) with the hub's
    own entitlements of that contract and registry."""

    contract_id = models.CharField(max_length=200)
    licensor = models.ForeignKey(Party, on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    outcome = models.CharField(max_length=20, choices=ReconciliationOutcome.choices)
    error = models.TextField(blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    hub_totals = models.JSONField(default=dict, blank=True)
    registry_totals = models.JSONField(default=dict, blank=True)
    difference_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome__in=ReconciliationOutcome.values),
                name="usagereconciliation_outcome_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["contract_id", "started_at"], name="usagerecon_contract_idx"),
        ]

    def __str__(self) -> str:
        return f"contract {self.contract_id} at {self.licensor_id}: {self.outcome}"


class UsageDifference(models.Model):
    """One difference found by a reconciliation."""

    class Kind(models.TextChoices):
        TOTAL = "total", "total differs"
        STATUS = "status", "entitlement status differs"
        MISSING_AT_REGISTRY = "missing-at-registry", "entitlement missing at the registry"
        UNKNOWN_AT_HUB = "unknown-at-hub", "entitlement unknown at the hub"
        ORDER_MISSING_AT_REGISTRY = "order-missing-at-registry", "order missing at the registry"
        ORDER_UNKNOWN_AT_HUB = "order-unknown-at-hub", "order unknown at the hub"

    reconciliation = models.ForeignKey(
        UsageReconciliation, on_delete=models.CASCADE, related_name="differences"
    )
    kind = models.CharField(max_length=40, choices=Kind.choices)
    delivery_order_id = models.CharField(max_length=200, blank=True)
    entitlement_id = models.CharField(max_length=200, blank=True)
    field = models.CharField(max_length=40, blank=True)
    hub_value = models.CharField(max_length=200, blank=True)
    registry_value = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    kind__in=[
                        "total",
                        "status",
                        "missing-at-registry",
                        "unknown-at-hub",
                        "order-missing-at-registry",
                        "order-unknown-at-hub",
                    ]
                ),
                name="usagedifference_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.delivery_order_id} {self.entitlement_id} {self.field}".strip()
