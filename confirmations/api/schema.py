"""Documentation-only serializers of the confirmations API (the views answer plain dicts)."""

from __future__ import annotations

from rest_framework import serializers

from confirmations.models import ConfirmationState


class ConfirmationOutcomeSerializer(serializers.Serializer):
    """The state of a confirmation or initial activation, for the party that sent it
    (docs/confirmations.md, "Outcomes")."""

    entitlementReceiveId = serializers.CharField(
        help_text="The entitlementReceiveId of the confirmation (or the "
        "initialActivationReferenceId of the activation)."
    )
    state = serializers.ChoiceField(
        choices=ConfirmationState.values,
        help_text="pending: stored, not yet decided; applied: it changed a status; duplicate: "
        "the status already was the confirmed one; stale: the status had already moved on to "
        "one it cannot follow; rejected: it does not fit the hub's request.",
    )
    reason = serializers.CharField(
        allow_blank=True,
        help_text="Why, in words (e.g. the mismatching field of a rejection); empty while pending.",
    )

    class Meta:
        ref_name = "ConfirmationOutcome"
