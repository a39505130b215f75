"""Load the party registry file (docs/registry.md): an idempotent upsert of parties, their
OAuth2 clients and products, schools and consents, in one transaction.

The file is validated completely before anything is written (``registry_schema``: its
declared shape and the checks across entries); every problem is reported with the path of
the key it concerns (``parties[1] (Portal Zuid).clients[0].scopes[2]``).
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.contrib.auth.hashers import check_password
from django.db import transaction
from oauth2_provider.models import AccessToken

from aanspraak.choices import EndpointAuthMethod, SigningAlgorithm
from aanspraak.models import Client, Consent, Party, Product, School, SchoolOrganisationId
from aanspraak.selectors.schools import find_school

from .registry_schema import check_registry


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


def validate_registry(data: dict, base_dir: str | Path | None = None) -> list[str]:
    """Every problem of the file, each prefixed with the path of its key."""
    return check_registry(data, base_dir).problems


def load_registry(data: dict, *, base_dir: str | Path | None = None) -> RegistryReport:
    """Validate ``data`` fully, then upsert it in one transaction. Raises RegistryError.
    ``base_dir`` is the registry file's folder: a relative ``privateKeyFile`` is read from
    there (else from the current folder)."""
    checked = check_registry(data, base_dir)
    if checked.problems:
        raise RegistryError(checked.problems)
    report = RegistryReport()
    with transaction.atomic():
        parties = {entry["name"]: _upsert_party(entry, report) for entry in checked.parties}
        for entry in checked.parties:
            party = parties[entry["name"]]
            for product_id in entry.get("products") or []:
                _upsert_product(product_id, party, report)
            for client in entry.get("clients") or []:
                _upsert_client(client, party, report)
        known = {p.name: p for p in Party.objects.all()}
        for entry in checked.schools:
            _upsert_school(entry, known, report)
    return report


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
        endpoint_base_url=endpoint.get("baseUrl") or "",
        endpoint_token_url=endpoint.get("tokenUrl") or "",
        endpoint_client_id=endpoint.get("clientId") or "",
        endpoint_client_secret=endpoint.get("clientSecret") or "",
        # A privateKeyFile's text was read into privateKey by the check: the key is stored
        # (encrypted), so a reload after the file changed is what changes it.
        endpoint_auth_method=endpoint.get("authMethod") or EndpointAuthMethod.CLIENT_SECRET_BASIC,
        endpoint_private_key=endpoint.get("privateKey") or "",
        endpoint_key_id=endpoint.get("keyId") or "",
        endpoint_algorithm=endpoint.get("algorithm") or SigningAlgorithm.RS256,
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
        "active": entry.get("active", True),
        "rate_limit": entry.get("rateLimit"),
        "jwks": entry.get("jwks"),
        "jwks_uri": entry.get("jwksUri"),
    }
    secret = entry.get("clientSecret")
    # The stored secret is a hash: compare by checking, replace only when it differs. A
    # client with keys gets a random secret nobody knows (and the validator refuses secrets).
    if secret is None and (created or not client.uses_assertions):
        values["client_secret"] = secrets.token_urlsafe(32)
    elif secret is not None and (created or not check_password(secret, client.client_secret)):
        values["client_secret"] = secret
    _apply(client, values, "client", report, created)
    if not values["active"]:
        # Revoked: the tokens it holds go at once (a web process's token cache keeps one at
        # most HUB_TOKEN_CACHE_SECONDS, docs/api.md#authentication).
        AccessToken.objects.filter(application=client).delete()


def _upsert_school(entry: dict, parties: dict[str, Party], report: RegistryReport) -> None:
    school = find_school(entry)
    created = school is None
    if created:
        school = School()
    master = entry.get("organisationMasterIdentifier")
    admin = entry.get("administration")
    values = {
        "organisation_master_identifier": master,
        "name": entry.get("name") or "",
        "administration_id": parties[admin].pk if admin else None,
    }
    _apply(school, values, "school", report, created)

    for oid in entry.get("organisationIds") or []:
        _, made = SchoolOrganisationId.objects.get_or_create(
            school=school,
            organisation_id=oid["organisationId"],
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
