"""Load the party registry file (docs/registry.md): an idempotent upsert of parties, their
OAuth2 clients and products, schools and consents, in one transaction.

The file is validated completely before anything is written; every problem is reported with
the path of the key it concerns (``parties[1].clients[0].scopes[2]``).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.contrib.auth.hashers import check_password
from django.db import transaction

from aanspraak.choices import SCOPE_ROLE, OrganisationIdType, Role, Scope
from aanspraak.models import Client, Consent, Party, Product, School, SchoolOrganisationId

PARTY_KEYS = {"name", "roles", "portalId", "endpoint", "products", "clients"}
ENDPOINT_KEYS = {"baseUrl", "tokenUrl", "clientId", "clientSecret"}
CLIENT_KEYS = {"clientId", "clientSecret", "scopes", "name"}
SCHOOL_KEYS = {
    "organisationMasterIdentifier",
    "organisationIds",
    "name",
    "consents",
    "administration",
}


class RegistryError(Exception):
    """The registry file is invalid; ``problems`` lists every problem with its key path."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid registry file:\n  " + "\n  ".join(problems))


@dataclass
class RegistryReport:
    created: Counter = field(default_factory=Counter)
    updated: Counter = field(default_factory=Counter)
    unchanged: Counter = field(default_factory=Counter)

    def count(self, kind: str, outcome: str) -> None:
        getattr(self, outcome)[kind] += 1

    @property
    def changed(self) -> bool:
        return bool(sum(self.created.values()) + sum(self.updated.values()))

    def summary(self) -> str:
        kinds = sorted(set(self.created) | set(self.updated) | set(self.unchanged))
        return "; ".join(
            f"{kind}: {self.created[kind]} created, {self.updated[kind]} updated, "
            f"{self.unchanged[kind]} unchanged"
            for kind in kinds
        )


def read_registry_file(path: str | Path) -> dict:
    """Parse a registry file (YAML, or JSON which is YAML too) into a dict."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RegistryError([f"{path}: not valid YAML: {exc}"]) from exc
    except json.JSONDecodeError as exc:
        raise RegistryError([f"{path}: not valid JSON: line {exc.lineno}: {exc.msg}"]) from exc
    if not isinstance(data, dict):
        raise RegistryError([f"{path}: the top level must be a mapping with parties and schools"])
    return data


def load_registry(data: dict) -> RegistryReport:
    """Validate ``data`` fully, then upsert it in one transaction. Raises RegistryError."""
    problems = validate_registry(data)
    if problems:
        raise RegistryError(problems)
    report = RegistryReport()
    with transaction.atomic():
        parties = {entry["name"]: _upsert_party(entry, report) for entry in data.get("parties", [])}
        for entry in data.get("parties", []):
            party = parties[entry["name"]]
            for product_id in entry.get("products", []):
                _upsert_product(str(product_id), party, report)
            for client in entry.get("clients", []):
                _upsert_client(client, party, report)
        known = {p.name: p for p in Party.objects.all()}
        for entry in data.get("schools", []):
            _upsert_school(entry, known, report)
    return report


# --- validation -----------------------------------------------------------------------------


def _is_str(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _unknown_keys(where: str, entry: dict, allowed: set[str]) -> list[str]:
    return [f"{where}.{key}: unknown key" for key in entry if key not in allowed]


def validate_registry(data: dict) -> list[str]:
    """Every problem of the file, each prefixed with the path of its key."""
    problems = _unknown_keys("(top level)", data, {"parties", "schools"})
    parties = data.get("parties") or []
    schools = data.get("schools") or []
    if not isinstance(parties, list):
        return [*problems, "parties: must be a list"]
    if not isinstance(schools, list):
        return [*problems, "schools: must be a list"]

    existing = {p.name: p.roles for p in Party.objects.all()}
    roles_by_name: dict[str, list[str]] = dict(existing)
    seen_names: set[str] = set()
    seen_clients: dict[str, str] = {}
    seen_products: dict[str, str] = {}
    seen_portal_ids: dict[str, str] = {}
    for i, entry in enumerate(parties):
        where = f"parties[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be a mapping")
            continue
        problems += _unknown_keys(where, entry, PARTY_KEYS)
        name = entry.get("name")
        if not _is_str(name):
            problems.append(f"{where}.name: required, a non-empty string")
            continue
        where = f"parties[{i}] ({name})"
        if name in seen_names:
            problems.append(f"{where}.name: listed twice")
        seen_names.add(name)
        roles = entry.get("roles")
        if not isinstance(roles, list) or not roles:
            problems.append(f"{where}.roles: required, a list of {', '.join(Role.values)}")
            roles = []
        for j, role in enumerate(roles):
            if role not in Role.values:
                problems.append(f"{where}.roles[{j}]: unknown role {role!r}")
        roles_by_name[name] = roles
        portal_id = entry.get("portalId")
        if Role.PORTAL in roles and not _is_str(portal_id):
            problems.append(f"{where}.portalId: required for a portal")
        if portal_id is not None and Role.PORTAL not in roles:
            problems.append(f"{where}.portalId: only portals have a portalId")
        if _is_str(portal_id):
            if portal_id in seen_portal_ids:
                problems.append(
                    f"{where}.portalId: {portal_id!r} also used by {seen_portal_ids[portal_id]}"
                )
            seen_portal_ids[portal_id] = name
            clash = Party.objects.filter(portal_id=portal_id).exclude(name=name).first()
            if clash:
                problems.append(f"{where}.portalId: {portal_id!r} already belongs to {clash.name}")
        endpoint = entry.get("endpoint")
        if endpoint is not None:
            if not isinstance(endpoint, dict):
                problems.append(f"{where}.endpoint: must be a mapping")
            else:
                problems += _unknown_keys(f"{where}.endpoint", endpoint, ENDPOINT_KEYS)
                for key in ("baseUrl", "tokenUrl"):
                    url = endpoint.get(key)
                    if url is not None and not (
                        isinstance(url, str) and url.startswith(("http://", "https://"))
                    ):
                        problems.append(f"{where}.endpoint.{key}: must be an http(s) URL")
                if not _is_str(endpoint.get("baseUrl")):
                    problems.append(f"{where}.endpoint.baseUrl: required in an endpoint")
                if endpoint.get("tokenUrl") and not (
                    _is_str(endpoint.get("clientId")) and _is_str(endpoint.get("clientSecret"))
                ):
                    problems.append(f"{where}.endpoint: tokenUrl needs clientId and clientSecret")
        products = entry.get("products") or []
        if products and Role.LICENSOR not in roles:
            problems.append(f"{where}.products: only licensors handle products")
        for j, product_id in enumerate(products if isinstance(products, list) else []):
            if not _is_str(str(product_id)):
                problems.append(f"{where}.products[{j}]: must be a productId")
            elif str(product_id) in seen_products:
                problems.append(
                    f"{where}.products[{j}]: {product_id} is also listed under "
                    f"{seen_products[str(product_id)]}"
                )
            seen_products[str(product_id)] = name
        if not isinstance(products, list):
            problems.append(f"{where}.products: must be a list")
        clients = entry.get("clients") or []
        if not isinstance(clients, list):
            problems.append(f"{where}.clients: must be a list")
            clients = []
        for j, client in enumerate(clients):
            cwhere = f"{where}.clients[{j}]"
            if not isinstance(client, dict):
                problems.append(f"{cwhere}: must be a mapping")
                continue
            problems += _unknown_keys(cwhere, client, CLIENT_KEYS)
            client_id = client.get("clientId")
            if not _is_str(client_id):
                problems.append(f"{cwhere}.clientId: required")
            elif client_id in seen_clients:
                problems.append(
                    f"{cwhere}.clientId: {client_id!r} is also used by {seen_clients[client_id]}"
                )
            else:
                seen_clients[client_id] = name
                owner = Client.objects.filter(client_id=client_id).exclude(party__name=name)
                if owner.exists():
                    problems.append(f"{cwhere}.clientId: {client_id!r} belongs to another party")
            if not _is_str(client.get("clientSecret")):
                problems.append(f"{cwhere}.clientSecret: required")
            scopes = client.get("scopes")
            if not isinstance(scopes, list) or not scopes:
                problems.append(f"{cwhere}.scopes: required, a list of scopes")
                scopes = []
            for k, scope in enumerate(scopes):
                if scope not in Scope.values:
                    problems.append(f"{cwhere}.scopes[{k}]: unknown scope {scope!r}")
                elif SCOPE_ROLE[scope] not in roles:
                    problems.append(
                        f"{cwhere}.scopes[{k}]: {scope} needs the party role {SCOPE_ROLE[scope]}"
                    )

    for i, entry in enumerate(schools):
        where = f"schools[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be a mapping")
            continue
        problems += _unknown_keys(where, entry, SCHOOL_KEYS)
        master = entry.get("organisationMasterIdentifier")
        ids = entry.get("organisationIds") or []
        if master is None and not ids:
            problems.append(f"{where}: organisationMasterIdentifier or organisationIds is required")
        if master is not None and not _is_str(str(master)):
            problems.append(f"{where}.organisationMasterIdentifier: must be a non-empty string")
        if not isinstance(ids, list):
            problems.append(f"{where}.organisationIds: must be a list")
            ids = []
        for j, oid in enumerate(ids):
            owhere = f"{where}.organisationIds[{j}]"
            if not isinstance(oid, dict) or not _is_str(str(oid.get("organisationId", ""))):
                problems.append(f"{owhere}.organisationId: required")
            elif oid.get("organisationIdType") not in OrganisationIdType.values:
                problems.append(
                    f"{owhere}.organisationIdType: one of {', '.join(OrganisationIdType.values)}"
                )
        for j, party_name in enumerate(entry.get("consents") or []):
            if party_name not in roles_by_name:
                problems.append(f"{where}.consents[{j}]: unknown party {party_name!r}")
        admin = entry.get("administration")
        if admin is not None:
            if admin not in roles_by_name:
                problems.append(f"{where}.administration: unknown party {admin!r}")
            elif Role.SCHOOL_ADMIN not in roles_by_name[admin]:
                problems.append(
                    f"{where}.administration: {admin} does not have the role school-admin"
                )
    return problems


# --- upserts ------------------------------------------------------------------------------


def _apply(obj, values: dict[str, Any], kind: str, report: RegistryReport, created: bool) -> None:
    """Set changed attributes only and save when something changed, so a second load of the
    same file writes nothing."""
    changed = [name for name, value in values.items() if getattr(obj, name) != value]
    for name in changed:
        setattr(obj, name, values[name])
    if created:
        obj.save()
        report.count(kind, "created")
    elif changed:
        obj.save(update_fields=changed)
        report.count(kind, "updated")
    else:
        report.count(kind, "unchanged")


def _upsert_party(entry: dict, report: RegistryReport) -> Party:
    roles = set(entry["roles"])
    endpoint = entry.get("endpoint") or {}
    values = {field: role in roles for role, field in Party.ROLE_FIELDS.items()}
    values.update(
        portal_id=entry.get("portalId") or None,
        endpoint_base_url=endpoint.get("baseUrl", ""),
        endpoint_token_url=endpoint.get("tokenUrl", ""),
        endpoint_client_id=endpoint.get("clientId", ""),
        endpoint_client_secret=endpoint.get("clientSecret", ""),
    )
    party = Party.objects.filter(name=entry["name"]).first()
    created = party is None
    if created:
        party = Party(name=entry["name"])
    _apply(party, values, "party", report, created)
    return party


def _upsert_product(product_id: str, licensor: Party, report: RegistryReport) -> None:
    product = Product.objects.filter(product_id=product_id).first()
    created = product is None
    if created:
        product = Product(product_id=product_id)
    _apply(product, {"licensor_id": licensor.pk}, "product", report, created)


def _upsert_client(entry: dict, party: Party, report: RegistryReport) -> None:
    client = Client.objects.filter(client_id=entry["clientId"]).first()
    created = client is None
    if created:
        client = Client(
            client_id=entry["clientId"],
            client_type=Client.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
        )
    values = {
        "party_id": party.pk,
        "name": entry.get("name") or f"{party.name} / {entry['clientId']}",
        "allowed_scopes": " ".join(sorted(set(entry["scopes"]))),
    }
    # The stored secret is a hash: compare by checking, replace only when it differs.
    if created or not check_password(entry["clientSecret"], client.client_secret):
        values["client_secret"] = entry["clientSecret"]
    _apply(client, values, "client", report, created)


def _find_school(entry: dict) -> School | None:
    master = entry.get("organisationMasterIdentifier")
    if master is not None:
        school = School.objects.filter(organisation_master_identifier=str(master)).first()
        if school:
            return school
    for oid in entry.get("organisationIds") or []:
        match = SchoolOrganisationId.objects.filter(
            organisation_id=str(oid["organisationId"]),
            organisation_id_type=oid["organisationIdType"],
        ).first()
        if match:
            return match.school
    return None


def _upsert_school(entry: dict, parties: dict[str, Party], report: RegistryReport) -> None:
    school = _find_school(entry)
    created = school is None
    if created:
        school = School()
    master = entry.get("organisationMasterIdentifier")
    admin = entry.get("administration")
    values = {
        "organisation_master_identifier": str(master) if master is not None else None,
        "name": entry.get("name", ""),
        "administration_id": parties[admin].pk if admin else None,
    }
    _apply(school, values, "school", report, created)

    for oid in entry.get("organisationIds") or []:
        _, made = SchoolOrganisationId.objects.get_or_create(
            school=school,
            organisation_id=str(oid["organisationId"]),
            organisation_id_type=oid["organisationIdType"],
        )
        report.count("school organisation id", "created" if made else "unchanged")

    # The file is authoritative for a listed school's consents.
    wanted = {parties[name].pk for name in entry.get("consents") or []}
    current = set(Consent.objects.filter(school=school).values_list("party_id", flat=True))
    for party_id in wanted - current:
        Consent.objects.create(school=school, party_id=party_id)
        report.count("consent", "created")
    if current - wanted:
        Consent.objects.filter(school=school, party_id__in=current - wanted).delete()
        report.count("consent", "updated")
    report.unchanged["consent"] += len(wanted & current)
