"""Strict validation of the bodies of ``PUT /entitlements/confirmations`` (seed 003) and
``PUT /usage/activation`` (docs/confirmations.md).

Strict means: strings must be JSON strings (no numbers coerced), timestamps are RFC 3339 with
a time zone, enums are the page's, and unknown fields are refused (a misspelt optional field
would otherwise be silently ignored). Errors name the field; the exception handler turns
them into a StatusResponse with functional code 11.
"""

from __future__ import annotations

import datetime as dt
import re

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from aanspraak.api import schema as shared_schema
from aanspraak.choices import OrganisationIdType, UserIdType
from entitlements.statuses import EntitlementType

# Seed 003's enums (newUrlStatus has no "uninitialized"; entitlements have no "expired").
CONFIRMABLE_ENTITLEMENT_STATUSES = ["created", "entitled", "licensed", "cancelled", "blocked"]
CONFIRMABLE_URL_STATUSES = ["initialized", "processed", "cancelled", "blocked", "expired"]

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


class StrictCharField(serializers.CharField):
    """A string that must be a JSON string, not anything ``str()`` can make one of."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 200)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictChoiceField(serializers.ChoiceField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


@extend_schema_field(OpenApiTypes.DATETIME)
class Rfc3339Field(serializers.Field):
    """An RFC 3339 date-time with an explicit offset (``Z`` or ``±hh:mm``)."""

    default_error_messages = {
        "invalid": ("must be an RFC 3339 date-time with a time zone, e.g. 2026-09-01T08:30:00Z."),
    }

    def to_internal_value(self, data) -> dt.datetime:
        if not isinstance(data, str) or not RFC3339.match(data):
            self.fail("invalid")
        try:
            moment = dt.datetime.fromisoformat(data.upper().replace("Z", "+00:00"))
        except ValueError:
            self.fail("invalid")
        return moment.astimezone(dt.UTC)

    def to_representation(self, value):
        return value.isoformat()


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, naming them."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["is not a field of this message."] for name in unknown}
                )
        return super().to_internal_value(data)


class UrlStatusSerializer(StrictSerializer):
    """Confirmation of the processing of the request at one portal. ``urlStatus`` is
    required by the hub (the page marks it optional, but without it nothing is confirmed)."""

    portal = StrictCharField(
        required=False,
        help_text="Identifier of the Leermiddelenportaal application; left out, it is the "
        "calling portal's own. A portal may confirm only its own portal (403 otherwise).",
    )
    urlStatus = StrictChoiceField(choices=CONFIRMABLE_URL_STATUSES)

    class Meta:
        ref_name = "NewUrlStatus"


class ConfirmationSerializer(StrictSerializer):
    """EntitlementConfirmation (seed 003): a licence registry confirms ``newEntitlementStatus``,
    a portal ``newUrlStatus``; at least one of the two is required. Unknown fields are refused
    (400)."""

    entitlementReferenceId = StrictCharField(
        help_text="The entitlementReferenceId that was sent by the Aanspraakmanager as part of "
        "the Entitlement request."
    )
    entitlementReceiveId = StrictCharField(
        help_text="A reference to this confirmation message, sent by the Licentieregistratie or "
        "the Leermiddelenportaal; a repeated one from the same sender is a no-op."
    )
    entitlementId = StrictCharField(
        help_text="The entitlementId which was part of the Entitlement request."
    )
    productId = StrictCharField(
        help_text="The productId which was part of the Entitlement request."
    )
    processedTimestamp = Rfc3339Field(
        help_text="The moment the Entitlement request was processed and the change became "
        "effective (RFC 3339, section 5.6, with a time zone)."
    )
    newEntitlementStatus = StrictChoiceField(
        choices=CONFIRMABLE_ENTITLEMENT_STATUSES,
        required=False,
        help_text="Confirmation of the proposed status (licence registries only).",
    )
    newUrlStatus = UrlStatusSerializer(
        required=False, help_text="Confirmation of the processing of the request (portals only)."
    )

    class Meta:
        ref_name = "EntitlementConfirmation"

    def validate(self, attrs):
        if "newEntitlementStatus" not in attrs and "newUrlStatus" not in attrs:
            raise serializers.ValidationError(
                "at least one of newEntitlementStatus and newUrlStatus is required."
            )
        return attrs


# validate() below refuses a confirmation with neither (docs/confirmations.md); every
# StrictSerializer refuses unknown fields.
shared_schema.require_at_least_one_of(
    "EntitlementConfirmation", "newEntitlementStatus", "newUrlStatus"
)
shared_schema.require_known_fields_only(
    "EntitlementConfirmation", "NewUrlStatus", "InitialActivation"
)


class OrganisationIdSerializer(StrictSerializer):
    organisationId = StrictCharField()
    organisationIdType = StrictChoiceField(choices=OrganisationIdType.values)


# Documented as the shared SchoolReference / UserReference shapes, closed (unknown fields
# refused).
@extend_schema_field(shared_schema.StrictSchoolReferenceSerializer)
class SchoolReferenceSerializer(StrictSerializer):
    organisationMasterIdentifier = StrictCharField(required=False)
    organisationIds = OrganisationIdSerializer(many=True, required=False)

    def validate(self, attrs):
        if not attrs.get("organisationMasterIdentifier") and not attrs.get("organisationIds"):
            raise serializers.ValidationError(
                "either organisationMasterIdentifier or organisationIds is required."
            )
        return attrs


class UserIdSerializer(StrictSerializer):
    userId = StrictCharField(max_length=500)
    userIdType = StrictChoiceField(choices=UserIdType.values)


@extend_schema_field(shared_schema.StrictUserReferenceSerializer)
class UserReferenceSerializer(StrictSerializer):
    userMasterIdentifier = StrictCharField(required=False, max_length=500)
    userIds = UserIdSerializer(many=True, required=False)

    def validate(self, attrs):
        if not attrs.get("userMasterIdentifier") and not attrs.get("userIds"):
            raise serializers.ValidationError("either userMasterIdentifier or userIds is required.")
        return attrs


class ActivationSerializer(StrictSerializer):
    """An initial activation (docs/confirmations.md): a user activated an entitlement. Every field
    is required; unknown fields are refused (400)."""

    initialActivationReferenceId = StrictCharField(
        help_text="The registry's reference to this message; a repeated one from the same "
        "sender is a no-op. Also the id for GET /entitlements/confirmations/{id}."
    )
    entitlementId = StrictCharField()
    productId = StrictCharField()
    entitlementType = StrictChoiceField(choices=EntitlementType.values)
    school = SchoolReferenceSerializer()
    user = UserReferenceSerializer(help_text="The user who activated the entitlement.")
    activationTimestamp = Rfc3339Field(
        help_text="When the user activated it (RFC 3339 with a time zone)."
    )

    class Meta:
        ref_name = "InitialActivation"
