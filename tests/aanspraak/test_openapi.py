"""The OpenAPI document at /api/schema/ against the seed pages' field tables, and the
Swagger UI at /api/docs/ working without any CDN."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import jsonschema
import pytest
import yaml
from django.test import Client as HttpClient

from aanspraak.choices import Scope
from entitlements.statuses import DeliveryType
from tests.support.confirm_helpers import activation_body, licensor_body, request_to
from tests.support.factories import make_order
from tests.support.seedtables import (
    SEED_002,
    SEED_003,
    SeedField,
    children,
    parse_field_table,
    parse_stacked_field_table,
    seed_path,
    seed_yaml,
    stacked_rows,
)


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        response = HttpClient().get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def resolve(node: dict, schema: dict) -> dict:
    """Follow ``$ref`` (also the ``allOf: [$ref]`` drf-spectacular writes next to a
    description)."""
    if "allOf" in node and len(node["allOf"]) == 1:
        node = {**node["allOf"][0], **{k: v for k, v in node.items() if k != "allOf"}}
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return resolve(schema["components"]["schemas"][name], schema)
    return node


def ref_name(node: dict) -> str | None:
    if "allOf" in node and len(node["allOf"]) == 1:
        node = node["allOf"][0]
    return node["$ref"].rsplit("/", 1)[-1] if "$ref" in node else None


def assert_matches(field: SeedField, node: dict, schema: dict) -> None:
    """One seed table row against the OpenAPI property for it."""
    resolved = resolve(node, schema)
    expected_type = {
        "Tekenreeks": ("string", None),
        "Datum": ("string", "date"),
        "Datum/tijd": ("string", "date-time"),
        "Geheel getal": ("integer", None),
        "Keuzelijst": ("string", None),
        "Lijst[]": ("array", None),
        "Object": ("object", None),
    }[field.type]
    assert (resolved.get("type"), resolved.get("format")) == expected_type, field.path
    if field.allowed is not None:
        assert resolved["enum"] == list(field.allowed), field.path
    else:
        assert "enum" not in resolved, field.path
    if field.ref:
        assert ref_name(node) == field.ref, field.path


def assert_object_matches(fields, prefix: str, component: str, schema: dict) -> None:
    """The direct children of ``prefix`` in the seed table are exactly the properties of
    ``component``: same names, types, enums and required list."""
    node = schema["components"]["schemas"][component]
    rows = children(fields, prefix)
    assert list(node["properties"]) == [f.name for f in rows], component
    for field in rows:
        assert_matches(field, node["properties"][field.name], schema)
    assert sorted(node.get("required", [])) == sorted(f.name for f in rows if f.required)


@pytest.fixture(scope="module")
def seed_002() -> list[SeedField]:
    fields = parse_field_table(SEED_002)
    # The page announces its row count: the parser must have read every row.
    announced = re.search(r"(\d+) items\|", seed_path(SEED_002).read_text(encoding="utf-8"))
    assert len(fields) == int(announced.group(1)) == 28
    return fields


def operation(schema: dict, path: str, method: str) -> dict:
    return schema["paths"][path][method]


def test_entitlement_matches_seed_002(schema, seed_002):
    assert_object_matches(seed_002, "response.200", "Entitlement", schema)


def test_url_status_matches_seed_002(schema, seed_002):
    urls = schema["components"]["schemas"]["Entitlement"]["properties"]["urlStatuses"]
    assert urls["type"] == "array"
    assert ref_name(urls["items"]) == "UrlStatus"
    assert_object_matches(seed_002, "response.200.urlStatuses[*]", "UrlStatus", schema)


def test_corrected_enums_not_the_seed_defect(schema):
    components = schema["components"]["schemas"]
    assert components["EntitlementStatusEnum"]["enum"] == [
        "created",
        "entitled",
        "licensed",
        "cancelled",
        "blocked",
        "expired",
    ]
    assert "school-student" not in components["EntitlementStatusEnum"]["enum"]
    assert "uninitialized" in components["UrlStatusEnum"]["enum"]
    assert "expired" in components["UrlStatusEnum"]["enum"]


@pytest.mark.parametrize("code", ["401", "403", "404"])
def test_error_bodies_are_status_response_as_in_seed_002(schema, seed_002, code):
    assert_object_matches(seed_002, f"response.{code}", "StatusResponse", schema)
    op = operation(schema, "/entitlements/deliveryorder/{id}", "get")
    content = op["responses"][code]["content"]["application/json"]["schema"]
    assert ref_name(content) == "StatusResponse"


def test_read_operation_matches_seed_002(schema, seed_002):
    op = operation(schema, "/entitlements/deliveryorder/{id}", "get")
    assert op["operationId"] == "get-entitlements-by-delivery-order"
    # request.query.id of the table is the path parameter of the YAML.
    (param,) = op["parameters"]
    (id_row,) = [f for f in seed_002 if f.path == "request.query.id"]
    assert (param["name"], param["in"], param["required"]) == ("id", "path", id_row.required)
    assert param["schema"]["type"] == "string"
    ok = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["type"] == "array" and ref_name(ok["items"]) == "Entitlement"
    # Seed 002's "Verwachte statuscodes", and the hub's rate limit (docs/api.md).
    assert set(op["responses"]) == {"200", "400", "401", "403", "404", "405", "429"}
    assert op["security"] == [
        {
            "OAuth2": sorted(
                [
                    "eduv.entitlement.seller",
                    "eduv.entitlement.licensor",
                    "eduv.entitlement.portal",
                    "eduv.entitlement.dashboard",
                ]
            )
        }
    ]


def test_every_error_response_is_a_status_response(schema):
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            for code, response in op["responses"].items():
                if int(code) >= 400:
                    body = response["content"]["application/json"]["schema"]
                    assert ref_name(body) == "StatusResponse", (path, method, code)


def test_oauth2_security_scheme(schema):
    scheme = schema["components"]["securitySchemes"]["OAuth2"]
    assert scheme["type"] == "oauth2"
    flow = scheme["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/oauth2/token/"
    assert set(flow["scopes"]) == set(Scope.values)
    assert set(schema["components"]["securitySchemes"]) == {"OAuth2"}


def test_licentieregistratie_endpoints_are_documented_as_405(schema):
    post = operation(schema, "/usage/school/user", "post")
    get = operation(schema, "/usage/contracts/{id}", "get")
    for op in (post, get):
        assert set(op["responses"]) == {"405"}
        assert "Licentieregistratie" in op["responses"]["405"]["description"]
    assert post["operationId"] == "get-usage-for-user-at-school"
    assert get["operationId"] == "get-usage-by-contract"


def test_entitlement_specification_documents_the_hub_shape(schema):
    spec = schema["components"]["schemas"]["EntitlementSpecification"]
    assert set(spec["properties"]) == {"school", "user", "activationCode"}
    assert ref_name(spec["properties"]["school"]) == "SchoolReference"
    assert ref_name(spec["properties"]["user"]) == "UserReference"


def test_swagger_ui_uses_local_assets(db):
    response = HttpClient().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "/api/schema/" in html
    # The sidecar's files, from this server's static files; no CDN.
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
    from django.contrib.staticfiles import finders

    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")


# --- Completeness: every route documented, no generator warnings, the committed document ---

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "docs" / "openapi.yaml"
# Routes that are not the chain's API (health and metrics: docs/operations.md).
NOT_API = ("admin/", "oauth2/", "api/schema/", "api/docs/", "healthz", "readyz", "metrics")
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """``manage.py spectacular --fail-on-warn --validate`` run as an operator would."""
    out = tmp_path_factory.mktemp("openapi") / "openapi.yaml"
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "spectacular",
            "--file",
            str(out),
            "--fail-on-warn",
            "--validate",
        ],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result, out


def test_schema_generation_emits_no_warnings_or_errors(generated):
    result, out = generated
    assert result.returncode == 0, result.stderr
    # drf-spectacular prints its messages ("file:line: Warning [View]: ...") and a summary
    # only when something was emitted (other libraries' deprecation notices may be there).
    assert "Schema generation summary" not in result.stderr, result.stderr
    assert not re.search(r"(^|: )(Warning|Error)\b", result.stderr, re.M), result.stderr
    assert out.read_text(encoding="utf-8").startswith("openapi: 3.0.3")


def test_in_process_generation_counts_no_warnings(db):
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    SchemaGenerator().get_schema(request=None, public=True)
    assert not GENERATOR_STATS._warn_cache and not GENERATOR_STATS._error_cache, (
        dict(GENERATOR_STATS._warn_cache),
        dict(GENERATOR_STATS._error_cache),
    )


def test_committed_openapi_yaml_is_current(generated):
    """docs/openapi.yaml must be what the code generates (regenerate: see docs/api.md)."""
    result, out = generated
    assert result.returncode == 0, result.stderr
    assert COMMITTED.read_text(encoding="utf-8") == out.read_text(encoding="utf-8"), (
        "docs/openapi.yaml is stale: run "
        "`python manage.py spectacular --file docs/openapi.yaml --validate --fail-on-warn`"
    )


def test_served_schema_equals_the_committed_document(schema):
    assert schema == yaml.safe_load(COMMITTED.read_text(encoding="utf-8"))


def api_routes() -> dict[str, set[str]]:
    """Every URL route of the hub's API as an OpenAPI path, with the methods its view
    implements (HEAD/OPTIONS aside)."""
    from django.urls import URLPattern, URLResolver, get_resolver

    routes: dict[str, set[str]] = {}

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if route.startswith(NOT_API):
                continue
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                view = pattern.callback.view_class
                path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
                routes[path] = {
                    m for m in HTTP_METHODS if m in view.http_method_names and hasattr(view, m)
                }

    walk(get_resolver().url_patterns, "")
    return routes


def test_every_api_route_is_in_the_schema_with_its_methods(schema):
    routes = api_routes()
    assert {
        "/deliveryorders",
        "/entitlements/confirmations",
        "/entitlements/confirmations/{entitlementReceiveId}",
        "/entitlements/deliveryorder/{id}",
        "/usage/activation",
        "/usage/contracts/{id}",
        "/usage/school/user",
    } <= set(routes)
    documented = {path: set(ops) - {"parameters"} for path, ops in schema["paths"].items()}
    assert documented == routes


@pytest.mark.parametrize(
    ("path", "method", "operation_id", "scopes", "codes"),
    [
        (
            "/deliveryorders",
            "put",
            "put-delivery-order",
            ["eduv.entitlement.seller"],
            {"202", "400", "401", "403", "405", "413", "415", "429"},
        ),
        (
            "/entitlements/confirmations/{entitlementReceiveId}",
            "get",
            "get-confirmation-outcome",
            ["eduv.entitlement.licensor", "eduv.entitlement.portal", "eduv.usage.licensor"],
            {"200", "401", "403", "404", "405", "429"},
        ),
        (
            "/usage/activation",
            "put",
            "report-initial-activation",
            ["eduv.usage.licensor"],
            {"202", "400", "401", "403", "405", "413", "415", "429"},
        ),
    ],
)
def test_hub_operations_have_scopes_and_responses(
    schema, path, method, operation_id, scopes, codes
):
    op = operation(schema, path, method)
    assert op["operationId"] == operation_id
    assert op["security"] == [{"OAuth2": sorted(scopes)}]
    assert set(op["responses"]) == codes


def test_operation_ids_are_unique(schema):
    ids = [op["operationId"] for ops in schema["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


# --- Seed 003: EntitlementConfirmation --------------------------------------------------------

# Where the hub is deliberately stricter than the page: a newUrlStatus without urlStatus
# would confirm nothing, so the hub requires urlStatus in it (docs/confirmations.md).
HUB_REQUIRES = {"EntitlementConfirmation.newUrlStatus.urlStatus"}


@pytest.fixture(scope="module")
def seed_003() -> list[SeedField]:
    fields = parse_stacked_field_table(SEED_003)
    announced = re.search(r"(\d+) items\n", seed_path(SEED_003).read_text(encoding="utf-8"))
    # Every row of the page read (one, urlStatus, is listed twice there).
    assert len(stacked_rows(SEED_003)) == int(announced.group(1)) == 20
    assert len(fields) == 18
    return fields


def test_entitlement_confirmation_matches_seed_003(schema, seed_003):
    assert_object_matches(seed_003, "EntitlementConfirmation", "EntitlementConfirmation", schema)


def test_new_url_status_matches_seed_003(schema, seed_003):
    prop = schema["components"]["schemas"]["EntitlementConfirmation"]["properties"]
    assert ref_name(prop["newUrlStatus"]) == "NewUrlStatus"
    seed = [
        SeedField(f.path, f.type, f.required or f.path in HUB_REQUIRES, f.allowed, f.ref)
        for f in seed_003
    ]
    assert_object_matches(seed, "EntitlementConfirmation.newUrlStatus", "NewUrlStatus", schema)
    # 003's enum, not the stored union: "uninitialized" cannot be confirmed.
    url_status = resolve(
        schema["components"]["schemas"]["NewUrlStatus"]["properties"]["urlStatus"], schema
    )
    assert "uninitialized" not in url_status["enum"]


@pytest.mark.parametrize("code", ["400", "401", "403"])
def test_confirmation_errors_are_status_response_as_in_seed_003(schema, seed_003, code):
    assert_object_matches(seed_003, f"response.{code}", "StatusResponse", schema)


def test_confirm_operation_matches_seed_003_yaml(schema):
    (seed_op,) = seed_yaml(SEED_003)["/entitlements/confirmations"].values()
    op = operation(schema, "/entitlements/confirmations", "put")
    assert op["operationId"] == seed_op["operationId"] == "confirm-entitlement"
    assert op["summary"] == seed_op["summary"]
    assert op["tags"] == seed_op["tags"]
    assert op["security"] == [{"OAuth2": sorted(seed_op["security"][0]["OAuth2"])}]
    body = op["requestBody"]["content"]["application/json"]["schema"]
    assert body == seed_op["requestBody"]["content"]["application/json"]["schema"]
    assert op["requestBody"]["required"] is True
    # The page's status codes, plus 415 for a body that is not JSON (the hub reads the body
    # only as JSON; the page does not say what a non-JSON body gets) and 413 for one over the
    # size limit, and 429 for the client's rate limit (docs/api.md, "Rate limits").
    assert set(op["responses"]) == set(seed_op["responses"]) | {"413", "415", "429"}
    # 202 Accepted without a body, as in the page.
    assert "content" not in op["responses"]["202"] and "content" not in seed_op["responses"]["202"]


# --- Real answers validated against the generated document ------------------------------------
# Each endpoint is called for real (Django test client, test registry) and every answer's body
# is validated with jsonschema against the operation's documented response for its status.
# Objects are validated strictly (no undocumented fields), so a field the hub sends but the
# document lacks fails too; each test also produces every status its operation documents.

FORMATS = jsonschema.FormatChecker()
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@FORMATS.checks("date-time")
def _is_date_time(value) -> bool:
    return not isinstance(value, str) or bool(_RFC3339.match(value))


def closed(node):
    """A copy of an OpenAPI schema in which every object with properties refuses others."""
    if isinstance(node, list):
        return [closed(item) for item in node]
    if not isinstance(node, dict):
        return node
    copy = {key: closed(value) for key, value in node.items()}
    if "properties" in copy:
        copy.setdefault("additionalProperties", False)
    return copy


class AnswerChecker:
    """Validates answers of one operation and records which statuses were seen."""

    def __init__(self, schema: dict, path: str, method: str):
        self.components = closed(schema["components"])
        self.operation = operation(schema, path, method)
        self.seen: set[str] = set()

    def __call__(self, response, status: int):
        assert response.status_code == status, getattr(response, "content", b"")[:500]
        documented = self.operation["responses"].get(str(status))
        assert documented is not None, f"status {status} is not documented"
        self.seen.add(str(status))
        raw = b"".join(response.streaming_content) if response.streaming else response.content
        if "content" not in documented:
            assert raw == b"", raw[:200]
            return None
        assert response["Content-Type"].startswith("application/json")
        data = json.loads(raw)
        node = documented["content"]["application/json"]["schema"]
        validator = jsonschema.Draft202012Validator(
            {**node, "components": self.components}, format_checker=FORMATS
        )
        validator.validate(data)
        return data

    def assert_every_documented_status_seen(self) -> None:
        # The 429 of the rate limit: produced for every operation in test_openapi_rate_limits.py.
        assert self.seen == set(self.operation["responses"]) - {"429"}


def test_the_checker_refuses_undocumented_fields_and_bad_formats(schema):
    check = AnswerChecker(schema, "/entitlements/confirmations/{entitlementReceiveId}", "get")
    node = check.operation["responses"]["200"]["content"]["application/json"]["schema"]
    validator = jsonschema.Draft202012Validator(
        {**node, "components": check.components}, format_checker=FORMATS
    )
    good = {"entitlementReceiveId": "r", "state": "pending", "reason": ""}
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "extra": 1})
    assert not validator.is_valid({**good, "state": "done"})
    assert not validator.is_valid({"entitlementReceiveId": "r", "state": "pending"})
    entitlement = check.components["schemas"]["Entitlement"]
    dated = jsonschema.Draft202012Validator(
        {"$ref": "#/components/schemas/Entitlement", "components": check.components},
        format_checker=FORMATS,
    )
    assert "dateCreated" in entitlement["required"]
    valid = {
        "entitlementId": "e",
        "productId": "p",
        "startDate": "2026-08-01",
        "activationUntilDate": "2026-10-01",
        "entitlementType": "school-student",
        "entitlementStatus": "created",
        "dateCreated": "2026-08-02T07:30:15Z",
        "dateLastModified": "2026-08-02T07:30:15Z",
    }
    assert dated.is_valid(valid)
    assert not dated.is_valid({**valid, "startDate": "2026-13-45"})
    assert not dated.is_valid({**valid, "dateCreated": "yesterday"})
    assert not dated.is_valid({**valid, "contractId": None})  # left out, never null


def test_read_answers_match_the_schema(schema, registry, auth_client, api_client):
    check = AnswerChecker(schema, "/entitlements/deliveryorder/{id}", "get")
    make_order(registry, 2, delivery_order_id="DO-OA")
    make_order(
        registry,
        2,
        delivery_order_id="DO-OA-CODES",
        delivery_type=DeliveryType.SCHOOL_ACTIVATIONCODES,
    )
    seller = auth_client("oost-seller")
    people = check(seller.get("/entitlements/deliveryorder/DO-OA"), 200)
    codes = check(seller.get("/entitlements/deliveryorder/DO-OA-CODES"), 200)
    assert len(people) == len(codes) == 2
    assert "user" in people[0]["entitlementSpecification"]
    assert "activationCode" in codes[0]["entitlementSpecification"]
    assert people[0]["urlStatuses"] == [{"portal": "portal-zuid", "urlStatus": "uninitialized"}]
    check(seller.get("/entitlements/deliveryorder/" + "x" * 201), 400)
    check(api_client.get("/entitlements/deliveryorder/DO-OA"), 401)
    usage_only = auth_client("noord-lr", scope="eduv.usage.licensor")
    assert check(usage_only.get("/entitlements/deliveryorder/DO-OA"), 403)["status"] == 21
    check(seller.get("/entitlements/deliveryorder/DO-MISSING"), 404)
    check(seller.post("/entitlements/deliveryorder/DO-OA"), 405)
    check.assert_every_documented_status_seen()


def delivery_order_body(order_id: str, **changes) -> dict:
    order = {
        "deliveryOrderId": order_id,
        "contractId": "C-1",
        "buyer": {"school": {"organisationMasterIdentifier": "110A133"}},
        "productId": "9789001000011",
        "deliveryType": "school-students",
        "deliverySpecification": {
            "students": [{"userMasterIdentifier": "https://ketenid.nl/201703/a"}]
        },
        "startDate": "2026-08-01",
        "activationUntilDate": "2026-10-01",
        "expirationDate": "2027-07-31",
    }
    order.update(changes)
    return {"deliveryOrderReferenceId": str(uuid.uuid4()), "deliveryOrder": order}


def test_intake_answers_match_the_schema(schema, registry, auth_client, api_client, settings):
    check = AnswerChecker(schema, "/deliveryorders", "put")
    seller = auth_client("oost-seller")
    body = delivery_order_body("DO-IN")
    placed = check(seller.put("/deliveryorders", body, format="json"), 202)
    assert (placed["action"], placed["repeated"], placed["totalQuantity"]) == ("order", False, 1)
    again = check(seller.put("/deliveryorders", body, format="json"), 202)
    assert again["repeated"] is True
    enrolled = delivery_order_body(
        "DO-EN", deliverySpecification={"students": [{"enrollmentId": "E-1"}]}
    )
    check(seller.put("/deliveryorders", enrolled, format="json"), 202)
    cancel = {
        "deliveryOrderReferenceId": str(uuid.uuid4()),
        "deliveryOrder": {
            "deliveryOrderId": "DO-IN",
            "status": "cancelled",
            "endDate": "2026-12-31",
        },
    }
    cancelled = check(seller.put("/deliveryorders", cancel, format="json"), 202)
    assert cancelled["action"] == "cancel" and cancelled["cancelledQuantity"] == 1
    bad = delivery_order_body("DO-BAD", productId=None)
    assert check(seller.put("/deliveryorders", bad, format="json"), 400)["status"] == 11
    check(api_client.put("/deliveryorders", body, format="json"), 401)
    portal = auth_client("zuid-portal")
    assert check(portal.put("/deliveryorders", body, format="json"), 403)["status"] == 21
    check(seller.get("/deliveryorders"), 405)
    not_json = seller.put("/deliveryorders", "deliveryOrderId=DO-X", content_type="text/plain")
    assert check(not_json, 415)["status"] == 11
    settings.HUB_MAX_ORDER_BYTES = 100
    assert check(seller.put("/deliveryorders", body, format="json"), 413)["status"] == 99
    check.assert_every_documented_status_seen()


def test_intake_request_examples_match_the_documented_body(schema):
    """The bodies the hub accepts (an order, a cancellation) are valid documented requests,
    and the two shapes cannot be confused."""
    components = closed(schema["components"])
    for name in ("DeliveryOrder", "DeliveryOrderCancellation"):
        components["schemas"][name]["additionalProperties"] = True  # unknown keys are ignored
    op = operation(schema, "/deliveryorders", "put")
    node = op["requestBody"]["content"]["application/json"]["schema"]
    validator = jsonschema.Draft202012Validator(
        {**node, "components": components}, format_checker=FORMATS
    )
    order = delivery_order_body("DO-1")
    cancel = {
        "deliveryOrderReferenceId": "r",
        "deliveryOrder": {
            "deliveryOrderId": "DO-1",
            "status": "cancelled",
            "endDate": "2026-12-31",
        },
    }
    assert validator.is_valid(order) and validator.is_valid(cancel)
    by_enrollment = delivery_order_body(
        "DO-2", deliverySpecification={"students": [{"enrollmentId": "E-1"}]}
    )
    assert validator.is_valid(by_enrollment)
    # oneOf: an order marked cancelled without endDate is neither.
    order["deliveryOrder"]["status"] = "cancelled"
    assert not validator.is_valid(order)


def test_confirmation_answers_match_the_schema(schema, registry, auth_client, api_client, settings):
    check = AnswerChecker(schema, "/entitlements/confirmations", "put")
    entitlement = make_order(registry, 1).entitlements.get()
    body = licensor_body(request_to(entitlement, registry.licensor))
    licensor = auth_client("noord-lr")
    assert check(licensor.put("/entitlements/confirmations", body, format="json"), 202) is None
    url = "/entitlements/confirmations"
    missing = {k: v for k, v in body.items() if k != "productId"}
    assert check(licensor.put(url, missing, format="json"), 400)["status"] == 11
    check(api_client.put(url, body, format="json"), 401)
    portal = auth_client("zuid-portal")
    assert check(portal.put(url, body, format="json"), 403)["status"] == 21
    check(licensor.get(url), 405)
    check(licensor.put(url, "<confirmation/>", content_type="application/xml"), 415)
    settings.HUB_MAX_BODY_BYTES = 100
    assert check(licensor.put(url, body, format="json"), 413)["status"] == 99
    check.assert_every_documented_status_seen()


def test_confirmation_outcome_answers_match_the_schema(schema, registry, auth_client, api_client):
    check = AnswerChecker(schema, "/entitlements/confirmations/{entitlementReceiveId}", "get")
    entitlement = make_order(registry, 1).entitlements.get()
    body = licensor_body(request_to(entitlement, registry.licensor))
    licensor = auth_client("noord-lr")
    assert licensor.put("/entitlements/confirmations", body, format="json").status_code == 202
    url = f"/entitlements/confirmations/{body['entitlementReceiveId']}"
    outcome = check(licensor.get(url), 200)
    assert outcome == {
        "entitlementReceiveId": body["entitlementReceiveId"],
        "state": "pending",
        "reason": "",
    }
    check(api_client.get(url), 401)
    check(auth_client("oost-seller").get(url), 403)
    check(auth_client("berg-lr").get(url), 404)  # another registry's view: not found
    check(licensor.put(url, {}, format="json"), 405)
    check.assert_every_documented_status_seen()


def test_activation_answers_match_the_schema(schema, registry, auth_client, api_client, settings):
    check = AnswerChecker(schema, "/usage/activation", "put")
    entitlement = make_order(registry, 1).entitlements.get()
    body = activation_body(entitlement)
    licensor = auth_client("noord-lr")
    assert check(licensor.put("/usage/activation", body, format="json"), 202) is None
    bad = {**body, "activationTimestamp": "2026-09-01 08:00"}
    assert check(licensor.put("/usage/activation", bad, format="json"), 400)["status"] == 11
    check(api_client.put("/usage/activation", body, format="json"), 401)
    portal = auth_client("zuid-portal")
    assert check(portal.put("/usage/activation", body, format="json"), 403)["status"] == 21
    check(licensor.get("/usage/activation"), 405)
    check(licensor.put("/usage/activation", "x", content_type="text/plain"), 415)
    settings.HUB_MAX_BODY_BYTES = 100
    assert check(licensor.put("/usage/activation", body, format="json"), 413)["status"] == 99
    check.assert_every_documented_status_seen()


@pytest.mark.parametrize(
    ("path", "method", "url"),
    [
        ("/usage/school/user", "post", "/usage/school/user"),
        ("/usage/contracts/{id}", "get", "/usage/contracts/C-1"),
    ],
)
def test_provided_elsewhere_answers_match_the_schema(schema, db, api_client, path, method, url):
    check = AnswerChecker(schema, path, method)
    data = check(getattr(api_client, method)(url), 405)
    assert "Licentieregistratie" in data["statusMessage"]
    check.assert_every_documented_status_seen()
