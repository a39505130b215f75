"""Confirmations (seed 003) and initial activations received from registries and portals.

A row is written in the request, durable before the 202, and decided later by a worker.
"""

from django.db import models
from django.db.models import Q

from aanspraak.models import Client, Party
from entitlements.models import Entitlement, OutboundMessage
from entitlements.rules.transitions import Outcome
from entitlements.statuses import EntitlementStatus, UrlStatus


class ConfirmationKind(models.TextChoices):
    CONFIRMATION = "confirmation", "Entitlement confirmation (PUT /entitlements/confirmations)"
    ACTIVATION = "activation", "Initial activation (PUT /usage/activation)"


# A confirmation's state: ``pending`` until a worker decides it, then the decision's
# ``Outcome`` (the transition table's one name for applied/duplicate/stale/rejected), so the
# stored states cannot drift from what ``decide`` answers. Write decided states as ``Outcome``.
ConfirmationState = models.TextChoices(
    "ConfirmationState", [("PENDING", "pending"), *((o.name, o.value) for o in Outcome)]
)


class Confirmation(models.Model):
    # Every confirmation is one INSERT on the hot path: only the indexes in Meta, which
    # cover the lookups the hub makes (sender + receive id, entitlement replay, pending).
    sender = models.ForeignKey(
        Party, on_delete=models.PROTECT, related_name="confirmations", db_index=False
    )
    client = models.ForeignKey(
        Client, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    kind = models.CharField(
        max_length=20, choices=ConfirmationKind.choices, default=ConfirmationKind.CONFIRMATION
    )
    receive_id = models.CharField(
        max_length=200, help_text="entitlementReceiveId (or initialActivationReferenceId)"
    )
    reference_id = models.CharField(max_length=200, blank=True, help_text="entitlementReferenceId")
    entitlement_ref = models.CharField(max_length=200, help_text="entitlementId as received")
    product_id = models.CharField(max_length=200)
    processed_timestamp = models.DateTimeField()
    new_entitlement_status = models.CharField(
        max_length=20, choices=EntitlementStatus.choices, null=True, blank=True
    )
    url_portal = models.CharField(max_length=200, null=True, blank=True)
    new_url_status = models.CharField(
        max_length=20, choices=UrlStatus.choices, null=True, blank=True
    )
    body = models.JSONField(help_text="The body as received")
    state = models.CharField(
        max_length=20, choices=ConfirmationState.choices, default=ConfirmationState.PENDING
    )
    reason = models.TextField(blank=True)
    # Resolved by the worker.
    entitlement = models.ForeignKey(
        Entitlement,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    message = models.ForeignKey(
        OutboundMessage,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    received_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    # Who, by name, put a rejected confirmation back in the queue after the data was fixed,
    # and when (docs/support-desk.md, "Actions"); empty when no one did. A database default,
    # so the request's INSERT (services/receive.py, which names its columns) needs no change.
    requeued_by = models.CharField(max_length=150, blank=True, db_default="")
    requeued_at = models.DateTimeField(null=True, blank=True)
    # The X-Request-ID of the PUT that stored it, so the worker's log line about it names it
    # (docs/operations.md, "Logs"); NULL on rows from before this column.
    request_id = models.CharField(max_length=200, null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                # (sender, receive_id) first: the outcome GET looks up by those two.
                fields=["sender", "receive_id", "kind"],
                name="confirmation_receive_id_unique",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=ConfirmationKind.values), name="confirmation_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(state__in=ConfirmationState.values),
                name="confirmation_state_valid",
            ),
            models.CheckConstraint(
                condition=Q(new_entitlement_status__isnull=True)
                | Q(new_entitlement_status__in=EntitlementStatus.values),
                name="confirmation_entitlement_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(new_url_status__isnull=True) | Q(new_url_status__in=UrlStatus.values),
                name="confirmation_url_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(new_entitlement_status__isnull=False) | Q(new_url_status__isnull=False),
                name="confirmation_has_new_status",
            ),
        ]
        indexes = [
            # The apply worker's claim (oldest first) and the sweep read pending rows by it.
            models.Index(
                fields=["received_at"],
                condition=Q(state="pending"),
                name="confirmation_pending_idx",
            ),
            models.Index(
                fields=["entitlement", "processed_timestamp"], name="confirmation_replay_idx"
            ),
            # A rejected row has no entitlement (the worker could not resolve one): the
            # timeline finds it by the entitlementId as received. Partial, so the hot path's
            # INSERT (a pending row) never touches it.
            models.Index(
                fields=["entitlement_ref"],
                condition=Q(state="rejected"),
                name="confirmation_rejected_ref_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sender_id}:{self.receive_id}"
