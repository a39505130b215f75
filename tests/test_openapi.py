"""The OpenAPI document at /api/schema/ against the seed pages' field tables, and the
Swagger UI at /api/docs/ working without any CDN."""

from __future__ import annotations

import re

import pytest
import yaml
from django.test import Client as HttpClient

from aanspraak.choices import Scope
from tests.seedtables import SEED_002, SeedField, children, parse_field_table, seed_path


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
