"""Request ids and JSON logs (docs/operations.md, "Logs"): the X-Request-ID rules, one JSON
line per request from the configured handler, the ids stored on the rows the workers take,
and the workers' lines naming them."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from aanspraak.log_format import JsonFormatter, TextFormatter, log_each, request_id_var
from aanspraak.request_ids import accepted_request_id
from confirmations.models import Confirmation
from confirmations.services.apply import apply_all_pending
from entitlements import outbox
from entitlements.models import OutboundMessage
from tests.support.confirm_helpers import licensor_body, request_to
from tests.support.factories import make_order
from tests.support.loopback import LoopbackParty, point_party_at
from tests.support.processes import ROOT

pytestmark = pytest.mark.django_db

NEW_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def log_lines():
    """The lines the configured console handler writes (its stream swapped for a buffer),
    parsed as JSON: a function returning them."""
    handler = next(
        h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter)
    )
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    handler.setStream(previous)


def request_lines(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line["logger"] == "aanspraak.requests"]


@pytest.mark.parametrize(
    "given",
    ["abc-123", "A.b_c:d-9", "x", "r" * 200, "0f8e4a6e-6b2d-4c0e-9d43-2f7b6f1c0a11"],
)
def test_a_valid_client_id_is_echoed(api_client, given):
    response = api_client.get("/entitlements/confirmations/x", HTTP_X_REQUEST_ID=given)
    assert response["X-Request-ID"] == given


@pytest.mark.parametrize(
    "given",
    [
        "",
        "r" * 201,
        "has space",
        "semi;colon",
        "slash/no",
        "ünïcode",
        "new\nline",
        # Credential shapes are never echoed nor logged, though their characters are valid.
        "access_token:abcdefgh",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
    ],
)
def test_an_invalid_client_id_is_replaced_by_a_new_uuid(api_client, given):
    response = api_client.get("/entitlements/confirmations/x", HTTP_X_REQUEST_ID=given)
    assert NEW_ID.fullmatch(response["X-Request-ID"])
    assert response["X-Request-ID"] != given


def test_without_a_client_id_every_response_gets_a_new_one(api_client):
    first = api_client.get("/entitlements/confirmations/x")["X-Request-ID"]
    second = api_client.get("/no/such/page/")["X-Request-ID"]
    assert NEW_ID.fullmatch(first) and NEW_ID.fullmatch(second) and first != second


def test_accepted_request_id_rules():
    assert accepted_request_id("abc-123") == "abc-123"
    assert NEW_ID.fullmatch(accepted_request_id(None))
    assert NEW_ID.fullmatch(accepted_request_id("a" * 201))


def test_one_json_line_per_request_with_the_client_and_no_token(
    registry, auth_client, make_token, log_lines
):
    order = make_order(registry, 1)
    token = make_token("noord-lr")
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    body = licensor_body(request_to(order.entitlements.get(), registry.licensor))
    response = client.put(
        "/entitlements/confirmations", body, format="json", HTTP_X_REQUEST_ID="abc-123"
    )
    assert response.status_code == 202

    [line] = request_lines(log_lines())
    assert line["request_id"] == "abc-123" == response["X-Request-ID"]
    assert line["method"] == "PUT"
    assert line["route"] == "entitlements/confirmations"
    assert line["path"] == "/entitlements/confirmations"
    assert line["status"] == 202
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["client"] == "noord-lr"
    assert line["level"] == "INFO" and line["message"] == "request" and line["time"]
    assert token not in json.dumps(log_lines())


def test_unauthenticated_and_unrouted_requests_are_logged_too(api_client, log_lines):
    api_client.get("/entitlements/confirmations/rcv-1", HTTP_X_REQUEST_ID="r-401")
    api_client.get("/no/such/page/", HTTP_X_REQUEST_ID="r-404")
    first, second = request_lines(log_lines())
    assert (first["request_id"], first["status"], first["client"]) == ("r-401", 401, None)
    assert first["route"] == "entitlements/confirmations/<str:entitlementReceiveId>"
    assert (second["request_id"], second["status"], second["route"]) == ("r-404", 404, None)


def test_a_credential_in_the_path_is_not_logged(api_client, log_lines):
    api_client.get("/oauth2/access_token=s3cr3tvalue123/")
    [line] = request_lines(log_lines())
    assert "s3cr3tvalue123" not in json.dumps(line)
    assert line["path"].startswith("/oauth2/")


def test_the_request_line_costs_no_query(registry, auth_client):
    body = licensor_body(request_to(make_order(registry, 1).entitlements.get(), registry.licensor))
    client = auth_client("noord-lr")
    client.put("/entitlements/confirmations", body, format="json")  # warm the token cache
    body["entitlementReceiveId"] += "-2"
    with CaptureQueriesContext(connection) as queries:
        client.put("/entitlements/confirmations", body, format="json", HTTP_X_REQUEST_ID="q-1")
    assert len(queries) == 1  # the INSERT, as before request ids (docs/performance.md, P2)


def test_lines_written_inside_a_request_carry_its_id():
    record = logging.LogRecord("x", logging.WARNING, "", 0, "something %s", ("odd",), None)
    token = request_id_var.set("in-request-7")
    try:
        doc = json.loads(JsonFormatter().format(record))
        text = TextFormatter().format(record)
    finally:
        request_id_var.reset(token)
    assert doc["request_id"] == "in-request-7" and doc["message"] == "something odd"
    assert text.endswith("something odd request_id=in-request-7")
    assert "request_id" not in json.loads(JsonFormatter().format(record))


def test_log_each_writes_one_line_per_item_with_the_common_fields():
    logger = logging.getLogger("tests.log_each")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    try:
        log_each(logger, logging.INFO, "decided", [{"request_id": "a"}, {"request_id": "b"}], n=2)
        log_each(logger, logging.INFO, "decided", [])
        handler.setFormatter(TextFormatter())
        log_each(logger, logging.INFO, "decided", [{"request_id": "c"}])
    finally:
        logger.removeHandler(handler)
    json_a, json_b, text_c = stream.getvalue().splitlines()
    assert [json.loads(json_a)["request_id"], json.loads(json_b)["request_id"]] == ["a", "b"]
    assert json.loads(json_b)["n"] == 2 and json.loads(json_b)["message"] == "decided"
    assert text_c.endswith("decided request_id=c")


def test_the_confirmation_stores_the_request_id_and_the_worker_logs_it(
    registry, auth_client, log_lines
):
    order = make_order(registry, 2)
    first, second = order.entitlements.order_by("id")
    client = auth_client("noord-lr")
    for entitlement, request_id in ((first, "conf-1"), (second, "conf-2")):
        body = licensor_body(request_to(entitlement, registry.licensor))
        client.put("/entitlements/confirmations", body, format="json", HTTP_X_REQUEST_ID=request_id)
    assert sorted(Confirmation.objects.values_list("request_id", flat=True)) == [
        "conf-1",
        "conf-2",
    ]

    apply_all_pending()
    decided = [line for line in log_lines() if line["message"] == "confirmation decided"]
    assert sorted((d["request_id"], d["outcome"]) for d in decided) == [
        ("conf-1", "applied"),
        ("conf-2", "applied"),
    ]
    assert all(d["logger"] == "confirmations.services.apply" for d in decided)


def test_an_intake_stores_its_request_id_on_its_messages_and_delivery_logs_it(
    registry, auth_client, woken_drains, log_lines
):
    from tests.entitlements.test_intake import order_body

    response = auth_client("oost-seller").put(
        "/deliveryorders", order_body(2), format="json", HTTP_X_REQUEST_ID="order-77"
    )
    assert response.status_code == 202
    messages = OutboundMessage.objects.all()
    assert messages.count() == 2 * 2 + 1  # licensor, portal, the seller's confirmation
    assert set(messages.values_list("request_id", flat=True)) == {"order-77"}

    server = LoopbackParty().start()
    try:
        for party in (registry.licensor, registry.portal, registry.seller):
            point_party_at(party, server)
        for party in (registry.licensor, registry.portal, registry.seller):
            outbox.drain(party.pk)
    finally:
        server.stop()
    delivered = [line for line in log_lines() if line["message"] == "message delivered"]
    assert len(delivered) == 5
    assert {line["request_id"] for line in delivered} == {"order-77"}
    assert {line["reference_id"] for line in delivered} == {
        str(r) for r in messages.values_list("reference_id", flat=True)
    }


def test_text_format_and_a_wrong_format_name(tmp_path):
    probe = (
        "import django, logging, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', "
        "'config.settings'); django.setup(); "
        "print(type(logging.getLogger().handlers[0].formatter).__name__)"
    )

    def run(fmt):
        env = {"HUB_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
        if fmt is not None:
            env["HUB_LOG_FORMAT"] = fmt
        return subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True
        )

    assert run(None).stdout.strip() == "JsonFormatter"
    assert run("text").stdout.strip() == "TextFormatter"
    wrong = run("xml")
    assert wrong.returncode != 0 and "HUB_LOG_FORMAT must be json or text" in wrong.stderr
