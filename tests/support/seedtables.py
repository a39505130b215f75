"""The field tables ("Veldspecificaties") of the seed pages in docs/seeds, parsed, so tests
compare the API with the pages themselves rather than with a hand-made copy that could drift.

docs/seeds holds the specification pages exactly as the project received them (the suite
needs nothing outside the repository)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

SEEDS_DIR = Path(__file__).resolve().parents[2] / "docs" / "seeds"
SEED_002 = "002_dac69ea24501bb00.txt"
SEED_003 = "003_208206e71200cb9d.txt"

# The seeds' README: 002's entitlementStatus values are a copy of entitlementType's; the real
# statuses are 003's plus expired. URL statuses are the union of 002's and 003's.
CORRECTED_ENUMS = {
    "entitlementStatus": ["created", "entitled", "licensed", "cancelled", "blocked", "expired"],
    "urlStatus": ["uninitialized", "initialized", "processed", "cancelled", "blocked", "expired"],
}

_TYPES = "Tekenreeks|Datum/tijd|Datum|Keuzelijst|Object|Lijst\\[\\]|Geheel getal"
_TYPE_ROW = re.compile(rf"^({_TYPES}) \| (Ja|Nee) \| (.*?) \|$")
_PATH_ROW = re.compile(r"^((?:request|response)\.\S*) \|$")


@dataclass(frozen=True)
class SeedField:
    path: str  # e.g. "response.200.urlStatuses[*].portal"
    type: str  # the Dutch type word
    required: bool
    allowed: tuple[str, ...] | None  # Keuzelijst values, as corrected by the README
    ref: str | None  # a named object type (e.g. "EntitlementSpecification")

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]


def seed_path(filename: str) -> Path:
    return SEEDS_DIR / filename


def parse_field_table(filename: str) -> list[SeedField]:
    """The rows of a seed page's field table in the ``path | ... | Type | Ja | ... |`` layout."""
    text = seed_path(filename).read_text(encoding="utf-8")
    table = text.split("Veldspecificaties", 1)[1].split("Verwachte statuscodes", 1)[0]
    fields: list[SeedField] = []
    current: str | None = None
    for line in table.splitlines():
        line = line.strip()
        if match := _PATH_ROW.match(line):
            current = match.group(1)
        elif (match := _TYPE_ROW.match(line)) and current:
            kind, required, constraint = match.groups()
            allowed = ref = None
            if constraint.startswith("toegestaan "):
                allowed = tuple(json.loads(constraint.removeprefix("toegestaan ")))
                name = current.rsplit(".", 1)[-1]
                allowed = tuple(CORRECTED_ENUMS.get(name, allowed))
            elif constraint != "-":
                ref = constraint
            fields.append(SeedField(current, kind, required == "Ja", allowed, ref))
            current = None
    return fields


_STACKED_PATH = re.compile(r"^((?:request|response)\.\S*)$")
_STACKED_TYPE = re.compile(rf"^({_TYPES}) (Ja|Nee) (.*)$")


def stacked_rows(filename: str) -> list[SeedField]:
    """The rows of a field table in the stacked layout of seed 003, exactly as the page has
    them: a line with the path, a line with the name, an optional description, then a line
    ``Type Ja|Nee constraint``. Paths are flat (``response..portal``), duplicates kept."""
    text = seed_path(filename).read_text(encoding="utf-8")
    table = text.split("Veldspecificaties", 1)[1].split("Verwachte statuscodes", 1)[0]
    rows: list[SeedField] = []
    current: str | None = None
    for line in table.splitlines():
        line = line.strip()
        if match := _STACKED_PATH.match(line):
            current = match.group(1)
        elif (match := _STACKED_TYPE.match(line)) and current:
            kind, required, constraint = match.groups()
            allowed = ref = None
            if constraint.startswith("toegestaan "):
                allowed = tuple(json.loads(constraint.removeprefix("toegestaan ")))
            elif constraint != "-":
                ref = constraint
            rows.append(SeedField(current, kind, required == "Ja", allowed, ref))
            current = None
    return rows


def request_body_component(filename: str) -> str:
    """The schema name the page's YAML gives its request body
    (``$ref: '#/components/schemas/EntitlementConfirmation'``)."""
    text = seed_path(filename).read_text(encoding="utf-8")
    yaml_part = text.split("requestBody:", 1)[1]
    return re.search(r"\$ref: '#/components/schemas/(\w+)'", yaml_part).group(1)


def parse_stacked_field_table(filename: str) -> list[SeedField]:
    """Seed 003's table with real paths. The page documents its request body under the
    nameless ``response.`` with flat child paths (``response..entitlementId``); here the body
    is named after the YAML's request schema (``EntitlementConfirmation.entitlementId``).
    The page also flattens the object's nested fields (``response..portal`` for
    ``newUrlStatus.portal``): they follow their object, which in 003 is the body's last field,
    so every row after a nested object belongs to it. A row the page repeats is kept once
    (and must repeat identically). Enums are as on the page: they are the values the hub
    accepts in requests (the README's corrections concern what the hub stores)."""
    root = request_body_component(filename)
    fields: dict[str, SeedField] = {}
    parent = root
    for row in stacked_rows(filename):
        if row.path == "response.":
            continue  # the body itself
        if row.path.startswith("response.."):
            path = f"{parent}.{row.name}"
            if row.type == "Object" and parent == root:
                parent = path
        else:
            path = row.path
        field = SeedField(path, row.type, row.required, row.allowed, row.ref)
        if fields.setdefault(path, field) != field:
            raise ValueError(f"{filename}: {path} is listed twice, differently")
    return list(fields.values())


def children(fields: list[SeedField], prefix: str) -> list[SeedField]:
    """The direct children of ``prefix`` (``response.200`` → ``response.200.entitlementId``)."""
    return [
        f
        for f in fields
        if f.path.startswith(prefix + ".")
        and "." not in f.path[len(prefix) + 1 :]
        and not f.path.endswith("[*]")  # a list's item row, not a field of the object
    ]


_DATE = r"^\d{4}-\d{2}-\d{2}$"
_DATE_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"


def json_schema(fields: list[SeedField], prefix: str, refs: dict[str, dict]) -> dict:
    """A strict JSON Schema of the object at ``prefix`` built from the seed table: exactly
    the seed's field names (no others), their types, required fields and enums. Named object
    types (``ref``) are taken from ``refs``."""
    properties: dict[str, dict] = {}
    required: list[str] = []
    for field in children(fields, prefix):
        properties[field.name] = _field_schema(fields, field, refs)
        if field.required:
            required.append(field.name)
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _field_schema(fields: list[SeedField], field: SeedField, refs: dict[str, dict]) -> dict:
    if field.type == "Tekenreeks":
        return {"type": "string"}
    if field.type == "Datum":
        return {"type": "string", "pattern": _DATE}
    if field.type == "Datum/tijd":
        return {"type": "string", "pattern": _DATE_TIME}
    if field.type == "Geheel getal":
        return {"type": "integer"}
    if field.type == "Keuzelijst":
        return {"type": "string", "enum": list(field.allowed or ())}
    if field.type == "Lijst[]":
        items = field.path + "[*]"
        return {"type": "array", "items": json_schema(fields, items, refs)}
    if field.ref:
        return refs[field.ref]
    return json_schema(fields, field.path, refs)


def seed_yaml(filename: str) -> dict:
    """The page's raw OpenAPI fragment ("Bronspecificatie (YAML)") as a dict of paths. Only
    pages whose fragment is valid YAML (003; the others have unindented descriptions)."""
    import yaml

    text = seed_path(filename).read_text(encoding="utf-8")
    fragment = text.split("Bronspecificatie (YAML)", 1)[1]
    lines = [line for line in fragment.splitlines() if not line.startswith("Ruwe definitie")]
    return yaml.safe_load("\n".join(lines))
