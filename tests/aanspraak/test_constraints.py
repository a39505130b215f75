"""Every database constraint rejects what it should (the invariants live in PostgreSQL too)."""

import datetime as dt
import uuid

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from aanspraak.models import Client, Consent, Party, Product, School, SchoolOrganisationId
from confirmations.models import Confirmation
from entitlements.models import (
    DeliveryAttempt,
    DeliveryOrder,
    DeliveryOrderIntake,
    DeliveryOrderPortal,
    Entitlement,
    EntitlementUrlStatus,
    OutboundMessage,
    StatusEvent,
)
from tests.support.factories import make_order

pytestmark = pytest.mark.django_db


def rejects(name: str, fn) -> None:
    """``fn`` must fail with an IntegrityError naming constraint ``name``."""
    with pytest.raises(IntegrityError) as excinfo, transaction.atomic():
        fn()
    assert name in str(excinfo.value), str(excinfo.value)


def order_kwargs(registry, **overrides):
    values = dict(
        seller=registry.seller,
        delivery_order_id=f"DO-{uuid.uuid4().hex[:6]}",
        school=registry.school,
        product=registry.product,
        delivery_type="school-students",
        start_date=dt.date(2026, 8, 1),
        activation_until_date=dt.date(2026, 10, 1),
    )
    values.update(overrides)
    return values


def test_party_constraints():
    rejects("party_portal_has_portal_id", lambda: Party.objects.create(name="P", is_portal=True))
    rejects(
        "party_portal_id_only_for_portals",
        lambda: Party.objects.create(name="Q", is_seller=True, portal_id="q"),
    )
    Party.objects.create(name="A", is_portal=True, portal_id="same")
    rejects("portal_id", lambda: Party.objects.create(name="B", is_portal=True, portal_id="same"))
    rejects("name", lambda: Party.objects.create(name="A", is_seller=True))


def test_client_constraints(registry):
    rejects(
        "client_has_scopes",
        lambda: Client.objects.create(
            party=registry.seller, client_id="x", client_secret="y", allowed_scopes=""
        ),
    )
    rejects(
        "client_id",
        lambda: Client.objects.create(
            party=registry.seller, client_id="oost-seller", allowed_scopes="a"
        ),
    )


def test_school_consent_product_constraints(registry):
    rejects(
        "organisation_master_identifier",
        lambda: School.objects.create(organisation_master_identifier="110A133"),
    )
    SchoolOrganisationId.objects.create(
        school=registry.school, organisation_id="X1", organisation_id_type="BP_ID"
    )
    rejects(
        "school_organisation_id_unique",
        lambda: SchoolOrganisationId.objects.create(
            school=registry.other_school, organisation_id="X1", organisation_id_type="BP_ID"
        ),
    )
    rejects(
        "school_organisation_id_type_valid",
        lambda: SchoolOrganisationId.objects.create(
            school=registry.school, organisation_id="X2", organisation_id_type="NOPE"
        ),
    )
    rejects(
        "consent_unique",
        lambda: Consent.objects.create(school=registry.school, party=registry.portal),
    )
    rejects(
        "product_id",
        lambda: Product.objects.create(product_id="9789001000011", licensor=registry.licensor),
    )


def test_delivery_order_constraints(registry):
    DeliveryOrder.objects.create(**order_kwargs(registry, delivery_order_id="DO-1"))
    rejects(
        "deliveryorder_unique_per_seller",
        lambda: DeliveryOrder.objects.create(**order_kwargs(registry, delivery_order_id="DO-1")),
    )
    # Another seller may use the same deliveryOrderId.
    DeliveryOrder.objects.create(
        **order_kwargs(registry, delivery_order_id="DO-1", seller=registry.other_seller)
    )
    rejects(
        "deliveryorder_type_valid",
        lambda: DeliveryOrder.objects.create(**order_kwargs(registry, delivery_type="school-all")),
    )
    rejects(
        "deliveryorder_status_valid",
        lambda: DeliveryOrder.objects.create(**order_kwargs(registry, status="lost")),
    )
    rejects(
        "deliveryorder_activation_after_start",
        lambda: DeliveryOrder.objects.create(
            **order_kwargs(registry, activation_until_date=dt.date(2026, 7, 1))
        ),
    )
    rejects(
        "deliveryorder_expiration_after_start",
        lambda: DeliveryOrder.objects.create(
            **order_kwargs(registry, expiration_date=dt.date(2026, 7, 1))
        ),
    )
    rejects(
        "deliveryorder_cancelled_has_end_date",
        lambda: DeliveryOrder.objects.create(**order_kwargs(registry, status="cancelled")),
    )


def test_order_portal_and_intake_constraints(registry):
    order = make_order(registry, 1)
    rejects(
        "deliveryorderportal_unique",
        lambda: DeliveryOrderPortal.objects.create(delivery_order=order, portal=registry.portal),
    )
    DeliveryOrderIntake.objects.create(
        seller=registry.seller, reference_id="R1", delivery_order=order, action="order", body={}
    )
    rejects(
        "intake_reference_unique_per_seller",
        lambda: DeliveryOrderIntake.objects.create(
            seller=registry.seller, reference_id="R1", delivery_order=order, action="order", body={}
        ),
    )
    rejects(
        "intake_action_valid",
        lambda: DeliveryOrderIntake.objects.create(
            seller=registry.seller, reference_id="R2", delivery_order=order, action="x", body={}
        ),
    )


def test_entitlement_constraints(registry):
    order = make_order(registry, 1)
    student = dict(delivery_order=order, entitlement_type="school-student")
    user = {"user_master_identifier": "https://ketenid.nl/x"}
    rejects(
        "entitlement_type_valid",
        lambda: Entitlement.objects.create(**{**student, "entitlement_type": "teacher"}, **user),
    )
    rejects(
        "entitlement_status_valid",
        lambda: Entitlement.objects.create(**student, status="lost", **user),
    )
    rejects(
        "entitlement_end_date_when_ended",
        lambda: Entitlement.objects.create(**student, status="cancelled", **user),
    )
    rejects(
        "entitlement_code_types_have_code",
        lambda: Entitlement.objects.create(
            delivery_order=order, entitlement_type="school-activationcode"
        ),
    )
    rejects("entitlement_user_types_have_user", lambda: Entitlement.objects.create(**student))
    Entitlement.objects.create(
        delivery_order=order, entitlement_type="school-activationcode", activation_code="ABC"
    )
    rejects(
        "activation_code",
        lambda: Entitlement.objects.create(
            delivery_order=order, entitlement_type="school-activationcode", activation_code="ABC"
        ),
    )
    # A cancelled entitlement with an endDate is fine.
    Entitlement.objects.create(**student, status="cancelled", end_date=dt.date(2026, 9, 1), **user)


def test_url_status_constraints(registry):
    order = make_order(registry, 1)
    entitlement = order.entitlements.get()
    rejects(
        "urlstatus_unique",
        lambda: EntitlementUrlStatus.objects.create(
            entitlement=entitlement, portal=registry.portal
        ),
    )
    rejects(
        "urlstatus_status_valid",
        lambda: EntitlementUrlStatus.objects.create(
            entitlement=entitlement, portal=registry.other_portal, status="lost"
        ),
    )


def test_message_and_attempt_constraints(registry):
    order = make_order(registry, 1, with_messages=False)
    entitlement = order.entitlements.get()
    rejects(
        "message_kind_valid",
        lambda: OutboundMessage.objects.create(
            kind="email", recipient=registry.licensor, delivery_order=order
        ),
    )
    rejects(
        "message_request_has_entitlement_and_proposal",
        lambda: OutboundMessage.objects.create(
            kind="entitlement-request", recipient=registry.licensor, entitlement=entitlement
        ),
    )
    rejects(
        "message_confirmation_has_order",
        lambda: OutboundMessage.objects.create(
            kind="deliveryorder-confirmation", recipient=registry.seller
        ),
    )
    message = OutboundMessage.objects.create(
        kind="entitlement-request",
        recipient=registry.licensor,
        entitlement=entitlement,
        proposed_entitlement_status="created",
    )
    rejects(
        "message_state_valid",
        lambda: OutboundMessage.objects.filter(pk=message.pk).update(state="lost"),
    )
    rejects(
        "reference_id",
        lambda: OutboundMessage.objects.create(
            kind="entitlement-request",
            recipient=registry.licensor,
            entitlement=entitlement,
            proposed_entitlement_status="created",
            reference_id=message.reference_id,
        ),
    )
    rejects(
        "attempt_outcome_valid",
        lambda: DeliveryAttempt.objects.create(
            message=message, started_at=timezone.now(), duration_ms=3, outcome="maybe"
        ),
    )


def test_status_event_constraints(registry):
    entitlement = make_order(registry, 1).entitlements.get()
    rejects(
        "statusevent_cause_valid",
        lambda: StatusEvent.objects.create(
            entitlement=entitlement,
            to_status="entitled",
            cause="magic",
            effective_at=timezone.now(),
        ),
    )


def test_confirmation_constraints(registry):
    base = dict(
        sender=registry.licensor,
        receive_id="R-1",
        reference_id="x",
        entitlement_ref="y",
        product_id="9789001000011",
        processed_timestamp=timezone.now(),
        body={},
    )
    Confirmation.objects.create(**base, new_entitlement_status="entitled")
    rejects(
        "confirmation_receive_id_unique",
        lambda: Confirmation.objects.create(**base, new_entitlement_status="entitled"),
    )
    # The same receive id from another sender is another confirmation.
    Confirmation.objects.create(
        **{**base, "sender": registry.other_licensor}, new_entitlement_status="entitled"
    )
    other = {**base, "receive_id": "R-2"}
    rejects("confirmation_has_new_status", lambda: Confirmation.objects.create(**other))
    rejects(
        "confirmation_entitlement_status_valid",
        lambda: Confirmation.objects.create(**other, new_entitlement_status="gone"),
    )
    rejects(
        "confirmation_url_status_valid",
        lambda: Confirmation.objects.create(**other, new_url_status="gone"),
    )
    rejects(
        "confirmation_state_valid",
        lambda: Confirmation.objects.create(**other, new_entitlement_status="entitled", state="x"),
    )
    rejects(
        "confirmation_kind_valid",
        lambda: Confirmation.objects.create(**other, new_entitlement_status="entitled", kind="x"),
    )


def test_foreign_keys_protect_referenced_rows(registry):
    from django.db.models import ProtectedError

    make_order(registry, 1)
    with pytest.raises(ProtectedError):
        registry.product.delete()
    # Django's foreign keys are DEFERRABLE INITIALLY DEFERRED: checked at commit, or now.
    from django.db import connection

    with pytest.raises(IntegrityError), transaction.atomic():
        Entitlement.objects.create(
            delivery_order_id=999999,
            entitlement_type="school-student",
            user_master_identifier="x",
        )
        connection.check_constraints(table_names=["entitlements_entitlement"])
