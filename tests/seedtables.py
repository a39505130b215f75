"""The field tables ("Veldspecificaties") of the seed pages in ../shared/seeds, parsed, so
tests compare the API with the pages themselves rather than with a copy that could drift."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

SEEDS_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "seeds"
SEED_002 = "002_dac69ea24501bb00.txt"

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
