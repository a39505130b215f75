"""No secret, access token or client assertion ever appears in a log record, an admin page or
an error body (docs/security.md, "Secrets").

One whole flow: a registry file with client secrets, a private_key_jwt client and endpoint
secrets is loaded; tokens are asked with the right and a wrong secret and with a valid and an
invalid assertion; the API is called with good, expired and revoked tokens; the hub delivers
to a loopback party that wants a token of its own; every error answer is provoked; every admin
page is opened as a superuser. Every log record of every logger at DEBUG and every response
body is kept, then searched for each secret. The one place a token may appear is the token
endpoint's own 200 answer that issues it.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import io
import json
import logging
import secrets

import pytest
import yaml
from django.contrib import admin
from django.core.management import call_command
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone
from joserfc.jwk import KeySet, RSAKey

from aanspraak.services.client_assertions import ASSERTION_TYPE
from entitlements import outbox
from entitlements.models import OutboundMessage
from tests.support.confirm_helpers import licensor_body, request_to
from tests.support.factories import REGISTRY, make_order
from tests.support.keys import signed_assertion
from tests.support.loopback import LoopbackParty
from tests.support.tokens import token_rows

pytestmark = pytest.mark.django_db
TOKEN_URL = "/oauth2/token/"
KEY = RSAKey.generate_key(2048, parameters={"kid": "leak-1"}, private=True)
STANDARD = set(vars(logging.makeLogRecord({})))


class Everything(logging.Handler):
    """Keeps each record as text: its message, its arguments, its traceback, its extras."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        extras = {k: v for k, v in vars(record).items() if k not in STANDARD}
        self.lines.append(f"{self.format(record)} args={record.args!r} extras={extras!r}")


@pytest.fixture
def every_log_record():
    """Every logger at DEBUG, propagating to one handler on the root; restored after."""
    handler = Everything()
    root = logging.getLogger()
    saved = [(root, root.level, root.propagate, root.disabled)]
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            saved.append((logger, logger.level, logger.propagate, logger.disabled))
            logger.setLevel(logging.NOTSET)
            logger.propagate, logger.disabled = True, False
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)
    for logger, level, propagate, disabled in saved:
        logger.setLevel(level)
        logger.propagate, logger.disabled = propagate, disabled


class Recorder:
    """An HTTP client that keeps every answer's body."""

    def __init__(self):
        self.bodies: list[tuple[str, int, str]] = []
        self.issued: set[str] = set()  # bodies of the 200s that issue a token

    def keep(self, what: str, response):
        body = b"".join(response.streaming_content) if response.streaming else response.content
        text = body.decode("utf-8", "replace")
        self.bodies.append((what, response.status_code, text))
        return response, text

    def token(self, data: dict, **headers) -> tuple[int, dict]:
        response, text = self.keep("token", HttpClient().post(TOKEN_URL, data, **headers))
        if response.status_code == 200:
            self.issued.add(text)
        return response.status_code, json.loads(text)

    def call(self, method: str, path: str, token: str | None = None, **kwargs):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        client = HttpClient(**headers)
        response, _ = self.keep(f"{method} {path}", getattr(client, method)(path, **kwargs))
        return response


def assertion(client_id: str, key=KEY, **claims) -> str:
    return signed_assertion(client_id, key, "http://testserver/oauth2/token/", **claims)


@pytest.fixture
def licensor_server():
    server = LoopbackParty().start()
    server.require_token = True
    yield server
    server.stop()


def registry_file(tmp_path, licensor_server: LoopbackParty) -> tuple[str, dict[str, str]]:
    """The test registry with fresh random secrets, a private_key_jwt client and an endpoint
    that wants a token; returns the file and the secrets by name."""
    data = copy.deepcopy(REGISTRY)
    found: dict[str, str] = {}
    for party in data["parties"]:
        for client in party.get("clients", []):
            client["clientSecret"] = found[client["clientId"]] = secrets.token_urlsafe(24)
        if party["name"] == "Uitgeverij Noord":
            found["endpoint"] = secrets.token_urlsafe(24)
            party["endpoint"] = {
                "baseUrl": licensor_server.base_url,
                "tokenUrl": licensor_server.token_url,
                "clientId": "hub-at-noord",
                "clientSecret": found["endpoint"],
            }
            public = KeySet([RSAKey.import_key(KEY.as_dict(private=False))]).as_dict()
            party["clients"].append(
                {"clientId": "noord-jwt", "jwks": public, "scopes": ["eduv.entitlement.licensor"]}
            )
        if party["name"] == "Portal Zuid":
            found["portal-endpoint"] = secrets.token_urlsafe(24)
            party["endpoint"] = {
                "baseUrl": "http://127.0.0.1:9",  # nothing listens: the token fetch fails
                "tokenUrl": "http://127.0.0.1:9/oauth2/token",
                "clientId": "hub-at-zuid",
                "clientSecret": found["portal-endpoint"],
            }
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path), found


def secret_form(client_id: str, secret: str) -> dict:
    return {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}


def assertion_form(signed: str) -> dict:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": signed,
    }


def test_no_secret_token_or_assertion_in_logs_admin_pages_or_error_bodies(
    tmp_path, every_log_record, licensor_server, settings, django_capture_on_commit_callbacks
):
    from aanspraak.models import Party

    settings.HUB_TOKEN_FAILURES_PER_MINUTE = 3
    settings.HUB_RETRY_BASE_SECONDS = 60
    web = Recorder()
    path, found = registry_file(tmp_path, licensor_server)
    call_command("load_registry", path, stdout=io.StringIO())
    wanted = dict(found)

    # Tokens: the right secret (basic and post), a wrong one, assertions good and bad.
    status, answer = web.token(secret_form("oost-seller", found["oost-seller"]))
    assert status == 200
    seller = wanted["seller-token"] = answer["access_token"]
    wrong = wanted["wrong-secret"] = secrets.token_urlsafe(24)
    assert web.token(secret_form("noord-lr", wrong))[0] == 401
    basic = base64.b64encode(f"noord-lr:{found['noord-lr']}".encode()).decode()
    status, answer = web.token(
        {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=f"Basic {basic}"
    )
    assert status == 200
    licensor = wanted["licensor-token"] = answer["access_token"]
    good = wanted["assertion"] = assertion("noord-jwt")
    status, answer = web.token(assertion_form(good))
    assert status == 200, answer
    wanted["assertion-token"] = answer["access_token"]
    stranger = RSAKey.generate_key(2048, parameters={"kid": "leak-1"}, private=True)
    bad = wanted["bad-assertion"] = assertion("noord-jwt", key=stranger)
    assert web.token(assertion_form(bad))[0] == 401
    expired_assertion = wanted["expired-assertion"] = assertion("noord-jwt", exp=1)
    assert web.token(assertion_form(expired_assertion))[0] == 401
    assert web.token(assertion_form(good))[0] == 401  # its jti was used before

    # Guessing: after three failures the pair gets 429, the right secret included.
    for _ in range(3):
        web.token(secret_form("zee-seller", wrong))
    assert web.token(secret_form("zee-seller", found["zee-seller"]))[0] == 429

    # The API with good, expired and revoked tokens, and every error answer.
    order = make_order(registry_namespace(), 2)
    read = f"/entitlements/deliveryorder/{order.delivery_order_id}"
    assert web.call("get", read, seller).status_code == 200
    status, answer = web.token(secret_form("oost-seller", found["oost-seller"]))
    expiring = wanted["expired-token"] = answer["access_token"]
    token_rows(expiring).update(expires=timezone.now() - dt.timedelta(seconds=1))
    assert web.call("get", read, expiring).status_code == 401
    status, answer = web.token(secret_form("oost-seller", found["oost-seller"]))
    revoked = wanted["revoked-token"] = answer["access_token"]
    assert web.call("get", read, "not-a-token").status_code == 401
    url = "/entitlements/confirmations"
    put = {"content_type": "application/json"}
    assert web.call("put", url, licensor, data="{}", **put).status_code == 400
    assert web.call("put", url, seller, data="{}", **put).status_code == 403
    assert web.call("get", f"{url}/rcv-none", licensor).status_code == 404
    big = json.dumps({"x": "y" * settings.HUB_MAX_BODY_BYTES})
    assert web.call("put", url, licensor, data=big, **put).status_code == 413
    assert web.call("put", url, licensor, data="x", content_type="text/plain").status_code == 415
    assert web.call("get", "/nothing/here", licensor).status_code == 404

    # Outbound: the licensor's API wants a token of its own; the portal's cannot be reached.
    with django_capture_on_commit_callbacks(execute=False):
        outbox.drain(Party.objects.get(name="Uitgeverij Noord").pk)
        outbox.drain(Party.objects.get(name="Portal Zuid").pk)
    asked = licensor_server.token_requests
    assert asked and LoopbackParty.basic_credentials(asked[0])[1] == found["endpoint"]
    wanted.update({f"party-token-{i}": t for i, t in enumerate(licensor_server.tokens)})
    assert OutboundMessage.objects.filter(state="delivered").exists()
    message = request_to(order.entitlements.first(), Party.objects.get(name="Uitgeverij Noord"))
    confirmed = web.call("put", url, licensor, data=json.dumps(licensor_body(message)), **put)
    assert confirmed.status_code == 202

    # The admin: revoke a token through it, then open every page of every model.
    from django.contrib.auth import get_user_model

    staff = get_user_model().objects.create_superuser("root", "root@example.org", "pw-admin")
    browser = HttpClient()
    browser.force_login(staff)
    tokens = token_rows(revoked)
    web.keep(
        "revoke",
        browser.post(
            reverse("admin:oauth2_provider_accesstoken_changelist"),
            {"action": "revoke_tokens", "_selected_action": list(tokens.values_list("pk", flat=1))},
        ),
    )
    assert not tokens.exists()
    assert web.call("get", read, revoked).status_code == 401
    pages = 0
    for model, _ in admin.site._registry.items():
        meta = model._meta
        changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        assert web.keep(changelist, browser.get(changelist))[0].status_code == 200
        for obj in model._default_manager.all()[:3]:
            change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
            assert web.keep(change, browser.get(change))[0].status_code == 200
            pages += 1
    assert pages > 20
    for entitlement in order.entitlements.all()[:3]:  # their timelines: attempts, errors too
        timeline = reverse("admin:entitlements_entitlement_timeline", args=[entitlement.pk])
        assert web.keep(timeline, browser.get(timeline))[0].status_code == 200

    # Nothing of any of them anywhere but in the answer that issued the token.
    lines = every_log_record.lines
    for logger in ("oauthlib.", "oauth2_provider.", "django.request ", "httpx ", "httpcore."):
        assert any(line.startswith(logger) for line in lines), f"no record of {logger}"
    leaks = []
    for name, value in wanted.items():
        leaks += [
            f"{name} logged: {line[:200]}" for line in every_log_record.lines if value in line
        ]
        leaks += [
            f"{name} in the {status} answer of {what}"
            for what, status, body in web.bodies
            if value in body and body not in web.issued
        ]
    for name in ("assertion", "bad-assertion", "expired-assertion"):
        signature = wanted[name].rsplit(".", 1)[1]
        leaks += [f"{name} signed, logged" for line in every_log_record.lines if signature in line]
    assert not leaks, "\n".join(leaks)


def registry_namespace():
    from types import SimpleNamespace

    from aanspraak.models import Party, Product, School

    parties = {p.name: p for p in Party.objects.all()}
    return SimpleNamespace(
        seller=parties["Boekhandel Oost"],
        licensor=parties["Uitgeverij Noord"],
        portal=parties["Portal Zuid"],
        school=School.objects.get(organisation_master_identifier="110A133"),
        product=Product.objects.get(product_id="9789001000011"),
    )


def test_redaction_of_credentials_in_a_log_message():
    from aanspraak.logs import redact

    assert redact("{'access_token': 'abc123XYZ', 'token_type': 'Bearer'}") == (
        "{'access_token': '[redacted]', 'token_type': 'Bearer'}"
    )
    assert redact("client_secret=s3cr3t&grant_type=x") == "client_secret=[redacted]&grant_type=x"
    assert redact("Authorization: Bearer abcdefghij.kl") == "Authorization: Bearer [redacted]"
    assert redact("assertion eyJhbGciOi.eyJpc3Mi.c2lnbmF0dXJl end") == "assertion [redacted] end"
    assert (
        redact("proposed cancelled for 3 entitlements") == "proposed cancelled for 3 entitlements"
    )


def test_a_token_in_the_query_string_is_refused(registry, make_token):
    order = make_order(registry, 1)
    token = make_token("oost-seller")
    read = f"/entitlements/deliveryorder/{order.delivery_order_id}"
    assert HttpClient().get(read, {"access_token": token}).status_code == 401
    assert HttpClient(HTTP_AUTHORIZATION=f"Bearer {token}").get(read).status_code == 200
