"""Documentation-only serializers of the entitlements API: the seed-002 Entitlement object
(the read endpoint streams its JSON without serializers; these describe it in OpenAPI and can
be reused by any view that sends or documents an Entitlement) and the body and answer of
``PUT /deliveryorders``."""

from __future__ import annotations

from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from aanspraak.api.schema import (
    SchoolReferenceSerializer,
    UserReferenceSerializer,
    require_at_least_one_of,
)
from entitlements.intake.contract import MAX_ENTITLEMENTS, MAX_ID_LENGTH
from entitlements.models import DeliveryOrderIntake
from entitlements.statuses import (
    DeliveryOrderStatus,
    DeliveryType,
    EntitlementStatus,
    EntitlementType,
    UrlStatus,
)


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


# --- PUT /deliveryorders (docs/delivery.md) -----------------------------------
# The intake service validates the body by hand (naming every problem); these serializers only
# document it. Unknown keys are ignored by the hub, so the objects stay open.


class BuyerSerializer(serializers.Serializer):
    """The buyer of the order: the school it belongs to."""

    school = SchoolReferenceSerializer()

    class Meta:
        ref_name = "Buyer"


class StudentReferenceSerializer(UserReferenceSerializer):
    """A student: a UserReference (``userMasterIdentifier``, the ECK iD, and/or ``userIds``),
    or ``{"enrollmentId": ...}`` alone, which the hub resolves through the school's
    administration system (seed 004; ``school-students`` only, docs/chain-clients.md)."""

    enrollmentId = serializers.CharField(
        max_length=MAX_ID_LENGTH,
        required=False,
        help_text="The student's enrollment at the school; not together with the other fields.",
    )

    class Meta:
        ref_name = "StudentReference"


require_at_least_one_of("StudentReference", "userMasterIdentifier", "userIds", "enrollmentId")


class DeliverySpecificationSerializer(serializers.Serializer):
    """Who gets an entitlement, per ``deliveryType``: ``school-students`` →
    ``{"students": [...]}``; ``school-employees`` → ``{"employees": [...]}`` (UserReferences
    with ``userIds``); ``customer-user`` → ``{"users": [...]}``; ``school-activationcodes`` and
    ``customer-activationcode`` → ``{"quantity": N}`` (the hub generates the codes). One
    entitlement per person or code; at most 100,000; a person listed twice is refused."""

    students = StudentReferenceSerializer(many=True, required=False)
    employees = UserReferenceSerializer(many=True, required=False)
    users = UserReferenceSerializer(many=True, required=False)
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_ENTITLEMENTS, required=False)

    class Meta:
        ref_name = "DeliverySpecification"


class DeliveryOrderSerializer(serializers.Serializer):
    """A delivery order for one product: the hub creates one entitlement (status
    ``created``) per person or activation code."""

    deliveryOrderId = serializers.CharField(
        max_length=MAX_ID_LENGTH, help_text="The seller's id of the order (unique per seller)."
    )
    contractId = serializers.CharField(max_length=MAX_ID_LENGTH, required=False)
    buyer = BuyerSerializer()
    productId = serializers.CharField(max_length=MAX_ID_LENGTH)
    deliveryType = serializers.ChoiceField(
        choices=[*DeliveryType.values, "customer-activatoncode"],
        help_text="customer-activatoncode is the source's misspelling, accepted as "
        "customer-activationcode. The group types (school-all, school-admin, school-studies, "
        "school-subjects, school-groups) are refused (400): the hub does not fetch group data.",
    )
    deliverySpecification = DeliverySpecificationSerializer()
    portals = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="The portalIds to deliver to; left out: every portal the school consented "
        "to; []: none.",
    )
    startDate = serializers.DateField()
    activationUntilDate = serializers.DateField(help_text="Not before startDate.")
    expirationDate = serializers.DateField(
        required=False, help_text="Not before startDate nor activationUntilDate."
    )
    status = serializers.ChoiceField(
        choices=[DeliveryOrderStatus.ORDERED],
        required=False,
        help_text="ordered (the default) for a new order.",
    )

    class Meta:
        ref_name = "DeliveryOrder"


class DeliveryOrderCancellationSerializer(serializers.Serializer):
    """Cancels the seller's order with this ``deliveryOrderId``: every entitlement not yet
    licensed is proposed ``cancelled`` to its registry and portals."""

    deliveryOrderId = serializers.CharField(max_length=MAX_ID_LENGTH)
    status = serializers.ChoiceField(choices=[DeliveryOrderStatus.CANCELLED])
    endDate = serializers.DateField()
    productId = serializers.CharField(
        max_length=MAX_ID_LENGTH, required=False, help_text="If given, must be the order's product."
    )

    class Meta:
        ref_name = "DeliveryOrderCancellation"


class DeliveryOrderMessageSerializer(serializers.Serializer):
    """The body of ``PUT /deliveryorders``: an idempotency key around one delivery order (or
    its cancellation)."""

    deliveryOrderReferenceId = serializers.CharField(
        max_length=MAX_ID_LENGTH,
        help_text="Idempotency key per seller: a repeated one is not processed again (202 "
        "with repeated: true; the confirmation is sent again).",
    )
    deliveryOrder = PolymorphicProxySerializer(
        component_name="DeliveryOrderOrCancellation",
        serializers=[DeliveryOrderSerializer, DeliveryOrderCancellationSerializer],
        resource_type_field_name=None,
    )

    class Meta:
        ref_name = "DeliveryOrderMessage"


class DeliveryOrderAcceptedSerializer(serializers.Serializer):
    """The 202 answer of ``PUT /deliveryorders``."""

    deliveryOrderReferenceId = serializers.CharField()
    deliveryOrderReceiveId = serializers.UUIDField(
        help_text="The hub's id of this receipt (of the first one when repeated)."
    )
    deliveryOrderId = serializers.CharField()
    productId = serializers.CharField()
    action = serializers.ChoiceField(choices=DeliveryOrderIntake.Action.values)
    repeated = serializers.BooleanField(
        help_text="true: nothing new was processed (a repeated key, or an unchanged re-send)."
    )
    totalQuantity = serializers.IntegerField(
        help_text="Entitlements of the order (for a cancellation: those that remain, licensed)."
    )
    cancelledQuantity = serializers.IntegerField(
        required=False, help_text="Cancellations only: entitlements proposed cancelled."
    )
    licensedQuantity = serializers.IntegerField(
        required=False, help_text="Cancellations only: licensed entitlements, not cancelled."
    )

    class Meta:
        ref_name = "DeliveryOrderAccepted"
