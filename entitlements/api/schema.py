"""Documentation-only serializers of the seed-002 Entitlement object (the read endpoint
streams its JSON without serializers; these describe it in OpenAPI and can be reused by any
view that sends or documents an Entitlement)."""

from __future__ import annotations

from rest_framework import serializers

from aanspraak.api.schema import SchoolReferenceSerializer, UserReferenceSerializer
from entitlements.statuses import EntitlementStatus, EntitlementType, UrlStatus


class EntitlementSpecificationSerializer(serializers.Serializer):
    """Who may activate the entitlement (the hub's shape; the seeds leave it open):
    ``{school, user}`` for school-student/school-employee, ``{user}`` for customer-student,
    ``{school, activationCode}`` for school-activationcode, ``{activationCode}`` for
    customer-activationcode. ``activationCode`` is shown only to the seller and the licensor."""

    school = SchoolReferenceSerializer(required=False)
    user = UserReferenceSerializer(required=False)
    activationCode = serializers.CharField(required=False)

    class Meta:
        ref_name = "EntitlementSpecification"


class UrlStatusSerializer(serializers.Serializer):
    """The status of the entitlement's access URL at one portal."""

    portal = serializers.CharField(required=False, help_text="Identifier of the portal.")
    urlStatus = serializers.ChoiceField(
        choices=UrlStatus.values, required=False, help_text="The status of the accessUrl."
    )

    class Meta:
        ref_name = "UrlStatus"


class EntitlementSerializer(serializers.Serializer):
    """The core object that expresses information about a product that is entitled by the
    Aanspraakmanager to a specified user or a user in possession of an activation code."""

    entitlementId = serializers.CharField()
    deliveryOrderId = serializers.CharField(required=False)
    contractId = serializers.CharField(required=False)
    productId = serializers.CharField()
    startDate = serializers.DateField()
    activationUntilDate = serializers.DateField()
    expirationDate = serializers.DateField(required=False)
    endDate = serializers.DateField(
        required=False, help_text="Date this Entitlement was blocked or cancelled."
    )
    entitlementType = serializers.ChoiceField(choices=EntitlementType.values)
    entitlementSpecification = EntitlementSpecificationSerializer(required=False)
    entitlementStatus = serializers.ChoiceField(choices=EntitlementStatus.values)
    urlStatuses = UrlStatusSerializer(many=True, required=False)
    dateCreated = serializers.DateTimeField()
    dateLastModified = serializers.DateTimeField()

    class Meta:
        ref_name = "Entitlement"
