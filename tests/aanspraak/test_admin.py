"""Every admin changelist and change form renders for a superuser; secrets never show."""

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse

from aanspraak.models import Party
from tests.support.factories import make_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_browser(client, registry):
    user = get_user_model().objects.create_superuser("admin", "admin@example.org", "pw-admin-1")
    client.force_login(user)
    order = make_order(registry, 2)
    from confirmations.models import Confirmation
    from entitlements.models import DeliveryAttempt, DeliveryOrderIntake, StatusEvent

    entitlement = order.entitlements.first()
    message = entitlement.messages.first()
    DeliveryOrderIntake.objects.create(
        seller=registry.seller, reference_id="REF-1", delivery_order=order, action="order", body={}
    )
    from django.utils import timezone

    DeliveryAttempt.objects.create(
        message=message, started_at=timezone.now(), duration_ms=5, http_status=503, outcome="retry"
    )
    StatusEvent.objects.create(
        entitlement=entitlement,
        from_status="created",
        to_status="entitled",
        cause="confirmation",
        effective_at=timezone.now(),
    )
    Confirmation.objects.create(
        sender=registry.licensor,
        receive_id="RCV-1",
        reference_id=str(message.reference_id),
        entitlement_ref=str(entitlement.entitlement_id),
        product_id="9789001000011",
        processed_timestamp=timezone.now(),
        new_entitlement_status="entitled",
        body={},
    )
    from aanspraak.services.workers import record_heartbeat

    record_heartbeat("worker-1")
    return client


def model_admins():
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label
        in {"aanspraak", "entitlements", "confirmations", "oauth2_provider"}
    ]


def test_every_changelist_and_change_form_renders(admin_browser):
    checked = 0
    for model, _ in model_admins():
        meta = model._meta
        changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        response = admin_browser.get(changelist)
        assert response.status_code == 200, changelist
        obj = model.objects.first()
        if obj is not None:
            change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
            response = admin_browser.get(change)
            assert response.status_code == 200, change
            checked += 1
    assert checked >= 14


@pytest.mark.parametrize(
    ("model", "term"),
    [
        ("entitlements.deliveryorder", "DO-"),
        # The support search matches whole values only (docs/support-desk.md, "Search").
        ("entitlements.entitlement", "eck-id"),
        ("confirmations.confirmation", "RCV-1"),
        ("entitlements.outboundmessage", None),
    ],
)
def test_search(admin_browser, model, term):
    from entitlements.models import Entitlement, OutboundMessage

    if term is None:
        term = str(OutboundMessage.objects.first().reference_id)
    elif term == "eck-id":
        term = Entitlement.objects.first().user_master_identifier
    app_label, model_name = model.split(".")
    response = admin_browser.get(reverse(f"admin:{app_label}_{model_name}_changelist"), {"q": term})
    assert response.status_code == 200
    assert "0 results" not in response.content.decode()


def test_entitlement_search_by_entitlement_id_and_reference_id(admin_browser):
    from entitlements.models import Entitlement

    entitlement = Entitlement.objects.first()
    url = reverse("admin:entitlements_entitlement_changelist")
    for term in (str(entitlement.entitlement_id), str(entitlement.messages.first().reference_id)):
        page = admin_browser.get(url, {"q": term}).content.decode()
        assert str(entitlement.entitlement_id) in page
        assert "1 result" in page


def test_secrets_never_shown(admin_browser):
    party = Party.objects.get(name="Uitgeverij Noord")
    party.endpoint_client_secret = "hub-outbound-secret"
    party.save()
    page = admin_browser.get(
        reverse("admin:aanspraak_party_change", args=[party.pk])
    ).content.decode()
    assert "hub-outbound-secret" not in page
    assert "fernet:" not in page
    client = party.clients.first()
    page = admin_browser.get(
        reverse("admin:aanspraak_client_change", args=[client.pk])
    ).content.decode()
    assert "noord-lr-secret" not in page
    assert client.client_secret not in page  # not even the hash


def test_party_secret_is_write_only(admin_browser):
    party = Party.objects.get(name="Uitgeverij Noord")
    url = reverse("admin:aanspraak_party_change", args=[party.pk])
    data = {
        "name": party.name,
        "is_licensor": "on",
        "endpoint_base_url": "http://127.0.0.1:9101",
        "endpoint_token_url": "",
        "endpoint_client_id": "hub",
        "endpoint_auth_method": "client_secret_basic",
        "endpoint_algorithm": "RS256",
        "new_endpoint_client_secret": "brand-new",
        "clients-TOTAL_FORMS": "1",
        "clients-INITIAL_FORMS": "1",
        "clients-MIN_NUM_FORMS": "0",
        "clients-MAX_NUM_FORMS": "1000",
        "clients-0-id": str(party.clients.first().pk),
        "clients-0-party": str(party.pk),
    }
    response = admin_browser.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    party.refresh_from_db()
    assert party.endpoint_client_secret == "brand-new"
    # Saving again with an empty secret field keeps it.
    data["new_endpoint_client_secret"] = ""
    assert admin_browser.post(url, data).status_code == 302
    party.refresh_from_db()
    assert party.endpoint_client_secret == "brand-new"


def test_records_are_view_only_but_actions_work(admin_browser):
    from entitlements.models import Entitlement

    entitlement = Entitlement.objects.first()
    url = reverse("admin:entitlements_entitlement_change", args=[entitlement.pk])
    page = admin_browser.get(url).content.decode()
    assert 'name="status"' not in page  # shown, not editable
    response = admin_browser.post(url, {"status": "licensed"})
    assert response.status_code == 403
    entitlement.refresh_from_db()
    assert entitlement.status == "created"
    for model in ("entitlement", "outboundmessage", "statusevent", "entitlementurlstatus"):
        add = reverse(f"admin:entitlements_{model}_add")
        assert admin_browser.get(add).status_code == 403
    confirmation_add = reverse("admin:confirmations_confirmation_add")
    assert admin_browser.get(confirmation_add).status_code == 403

    # Changes go through the actions (services), which still work on the changelist, once
    # their confirmation page is submitted.
    response = admin_browser.post(
        reverse("admin:entitlements_entitlement_changelist"),
        {
            "action": "propose_cancel",
            "_selected_action": [entitlement.pk],
            "end_date": "2026-12-31",
            "confirm": "Yes, propose",
        },
    )
    assert response.status_code == 302
    assert entitlement.messages.filter(proposed_entitlement_status="cancelled").exists()


def test_party_private_key_is_write_only_and_checked(admin_browser):
    from tests.support.keys import ec_pem, key_material, rsa_pem

    party = Party.objects.get(name="Uitgeverij Noord")
    url = reverse("admin:aanspraak_party_change", args=[party.pk])
    data = {
        "name": party.name,
        "is_licensor": "on",
        "endpoint_base_url": "http://127.0.0.1:9101",
        "endpoint_token_url": "http://127.0.0.1:9101/oauth2/token",
        "endpoint_client_id": "hub",
        "endpoint_auth_method": "private_key_jwt",
        "endpoint_algorithm": "ES256",
        "endpoint_key_id": "hub-ec",
        "new_endpoint_private_key": rsa_pem(),
        "clients-TOTAL_FORMS": "1",
        "clients-INITIAL_FORMS": "1",
        "clients-MIN_NUM_FORMS": "0",
        "clients-MAX_NUM_FORMS": "1000",
        "clients-0-id": str(party.clients.first().pk),
        "clients-0-party": str(party.pk),
    }
    refused = admin_browser.post(url, data)  # an RSA key for ES256
    assert refused.status_code == 200
    page = refused.content.decode()
    assert "ES256 needs an EC key on P-256" in page
    assert not any(line in page for line in key_material(rsa_pem()))
    data["new_endpoint_private_key"] = ""  # and none stored yet
    assert "private_key_jwt needs a private key" in admin_browser.post(url, data).content.decode()

    data["new_endpoint_private_key"] = ec_pem()
    assert admin_browser.post(url, data).status_code == 302
    party.refresh_from_db()
    assert party.endpoint_private_key == ec_pem().strip() and party.endpoint_key_id == "hub-ec"
    page = admin_browser.get(url).content.decode()
    assert not any(line in page for line in key_material(ec_pem()))
    data["new_endpoint_private_key"] = ""  # an empty field keeps the stored key
    assert admin_browser.post(url, data).status_code == 302
    party.refresh_from_db()
    assert party.endpoint_private_key == ec_pem().strip()
