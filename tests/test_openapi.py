"""The OpenAPI document at /api/schema/ against the seed pages' field tables, and the
Swagger UI at /api/docs/ working without any CDN."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.test import Client as HttpClient

from aanspraak.choices import Scope
from tests.seedtables import (
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
    # Seed 002's "Verwachte statuscodes".
    assert set(op["responses"]) == {"200", "400", "401", "403", "404", "405"}
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

REPO = Path(__file__).resolve().parent.parent
COMMITTED = REPO / "docs" / "openapi.yaml"
# Routes that are not the chain's API.
NOT_API = ("admin/", "oauth2/", "api/schema/", "api/docs/")
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
            {"202", "400", "401", "403", "405"},
        ),
        (
            "/entitlements/confirmations/{entitlementReceiveId}",
            "get",
            "get-confirmation-outcome",
            ["eduv.entitlement.licensor", "eduv.entitlement.portal", "eduv.usage.licensor"],
            {"200", "401", "403", "404", "405"},
        ),
        (
            "/usage/activation",
            "put",
            "report-initial-activation",
            ["eduv.usage.licensor"],
            {"202", "400", "401", "403", "405"},
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
    assert set(op["responses"]) == set(seed_op["responses"])
    # 202 Accepted without a body, as in the page.
    assert "content" not in op["responses"]["202"] and "content" not in seed_op["responses"]["202"]
