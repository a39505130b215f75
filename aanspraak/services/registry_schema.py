"""The registry file's contract (docs/registry.md): each entry's shape declared as DRF
serializers, then the checks that span entries and the database (unique names, portalIds,
products and clients; the parties that consents and administrations name).

``check_registry`` reports every problem at once, each with the path of its key:
``parties[2] (Uitgeverij Noord).clients[0].scopes[1]: unknown scope 'eduv.x'``. A party's
path carries its name once the name itself is valid; entries that fail their own schema are
left out of the checks across entries, so one mistake is not reported twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from joserfc.jwk import KeySet
from rest_framework import serializers
from rest_framework.settings import api_settings

from aanspraak.choices import SCOPE_ROLE, OrganisationIdType, Role, Scope
from aanspraak.models import Client, Party
from aanspraak.rates import parse_rate
from aanspraak.selectors.schools import AmbiguousSchool, find_school

from .registry_endpoint import EndpointSerializer
from .registry_fields import UNKNOWN_KEY, Boolean, HttpUrl, Identifier, Strict, Text, messages


def _list_of(child, what: str, **kwargs) -> serializers.ListField:
    """A list field; ``what`` is the message for a missing, null or non-list value."""
    keys = ("not_a_list", "empty") + (("required", "null") if kwargs.get("required", True) else ())
    return serializers.ListField(child=child, error_messages=messages(what, *keys), **kwargs)


def _optional_list_of(child) -> serializers.ListField:
    return _list_of(child, "must be a list", required=False, allow_null=True)


class RateLimit(Text):
    """``COUNT/UNIT``, as ``aanspraak.rates.parse_rate`` reads it."""

    def to_internal_value(self, data):
        data = super().to_internal_value(data).strip()
        try:
            parse_rate(data)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return data


class PublicKeys(serializers.DictField):
    """A JWK set of public keys, ``{"keys": [...]}`` (no private parts: the hub only
    verifies)."""

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        keys = data.get("keys")
        if set(data) != {"keys"} or not isinstance(keys, list) or not keys:
            raise serializers.ValidationError('must be a JWK set, {"keys": [...]}')
        try:
            KeySet.import_key_set(data)
        except Exception as exc:  # joserfc names what is wrong with the key
            raise serializers.ValidationError(f"is not a valid JWK set ({exc})") from exc
        if any("d" in key for key in keys):
            raise serializers.ValidationError("holds a private key: give the public keys only")
        return data


class ClientSerializer(Strict):
    """A client of the hub: a secret, or public keys for private_key_jwt (docs/registry.md)."""

    clientId = Text(error_messages=messages("required"))
    clientSecret = Text(required=False)
    jwks = PublicKeys(required=False)
    jwksUri = HttpUrl(required=False)
    scopes = _list_of(
        serializers.ChoiceField(
            Scope.choices, error_messages={"invalid_choice": "unknown scope {input!r}"}
        ),
        "required, a list of scopes",
        allow_empty=False,
    )
    name = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    active = Boolean(required=False)
    rateLimit = RateLimit(required=False, allow_null=True)

    def validate(self, attrs):
        given = [key for key in ("clientSecret", "jwks", "jwksUri") if attrs.get(key)]
        if len(given) != 1:
            raise serializers.ValidationError(
                "give exactly one of clientSecret, jwks or jwksUri"
                + (f" (it has {', '.join(given)})" if given else "")
            )
        uri = attrs.get("jwksUri")
        if uri and settings.PRODUCTION and not uri.startswith("https://"):
            raise serializers.ValidationError({"jwksUri": ["must be https in production"]})
        return attrs


class PartySerializer(Strict):
    name = Text(error_messages=messages("required, a non-empty string"))
    roles = _list_of(
        serializers.ChoiceField(
            Role.choices, error_messages={"invalid_choice": "unknown role {input!r}"}
        ),
        f"required, a list of {', '.join(Role.values)}",
        allow_empty=False,
    )
    portalId = Text(required=False, allow_null=True)
    endpoint = EndpointSerializer(required=False, allow_null=True)
    products = _optional_list_of(Identifier(error_messages=messages("must be a productId")))
    clients = ClientSerializer(
        many=True, required=False, allow_null=True, error_messages={"not_a_list": "must be a list"}
    )

    def validate(self, attrs):
        """What a party's roles allow: a portal's portalId, a licensor's products, and each
        client's scopes."""
        roles = set(attrs["roles"])
        errors: dict[str, Any] = {}
        if Role.PORTAL in roles and not attrs.get("portalId"):
            errors["portalId"] = ["required for a portal"]
        if attrs.get("portalId") is not None and Role.PORTAL not in roles:
            errors["portalId"] = ["only portals have a portalId"]
        if attrs.get("products") and Role.LICENSOR not in roles:
            errors["products"] = ["only licensors handle products"]
        clients = {}
        for j, client in enumerate(attrs.get("clients") or []):
            scopes = {
                k: [f"{scope} needs the party role {SCOPE_ROLE[scope]}"]
                for k, scope in enumerate(client["scopes"])
                if SCOPE_ROLE[scope] not in roles
            }
            if scopes:
                clients[j] = {"scopes": scopes}
        if clients:
            errors["clients"] = clients
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class OrganisationIdSerializer(Strict):
    organisationId = Identifier(error_messages=messages("required"))
    organisationIdType = serializers.ChoiceField(
        OrganisationIdType.choices,
        error_messages=messages(
            f"one of {', '.join(OrganisationIdType.values)}", "required", "null", "invalid_choice"
        ),
    )


class SchoolSerializer(Strict):
    organisationMasterIdentifier = Identifier(required=False, allow_null=True)
    organisationIds = OrganisationIdSerializer(
        many=True, required=False, allow_null=True, error_messages={"not_a_list": "must be a list"}
    )
    name = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    consents = _optional_list_of(Text(error_messages=messages("must be a party's name")))
    administration = Text(required=False, allow_null=True)

    def validate(self, attrs):
        if attrs.get("organisationMasterIdentifier") is None and not attrs.get("organisationIds"):
            raise serializers.ValidationError(
                "organisationMasterIdentifier or organisationIds is required"
            )
        return attrs


class RegistryFileSerializer(Strict):
    """The top level; its entries are validated one by one (``check_registry``)."""

    parties = _optional_list_of(serializers.JSONField())
    schools = _optional_list_of(serializers.JSONField())


@dataclass
class CheckedRegistry:
    """The problems of a registry file and, when there are none, its validated entries."""

    problems: list[str] = field(default_factory=list)
    parties: list[dict] = field(default_factory=list)
    schools: list[dict] = field(default_factory=list)


def _flatten(detail, path: str = "") -> Iterator[tuple[str, str]]:
    """DRF's nested error detail as (key path, message) pairs: ``clients[0].scopes[1]``."""
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            if key == api_settings.NON_FIELD_ERRORS_KEY:
                sub = path
            elif isinstance(key, int):
                sub = f"{path}[{key}]"
            else:
                sub = f"{path}.{key}" if path else str(key)
            yield from _flatten(value, sub)
    elif isinstance(detail, list) and all(isinstance(item, str) for item in detail):
        for message in detail:
            yield path, str(message)
    elif isinstance(detail, list):
        for index, item in enumerate(detail):
            yield from _flatten(item, f"{path}[{index}]")
    else:
        yield path, str(detail)


def _at(base: str, path: str, message: str) -> str:
    return f"{base}.{path}: {message}" if path else f"{base}: {message}"


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def check_registry(data: Mapping, base_dir: str | Path | None = None) -> CheckedRegistry:
    """Every problem of the registry file ``data``, each prefixed with the path of its key;
    the validated parties and schools when there are none. ``base_dir``: the file's folder,
    which relative paths in it (``endpoint.privateKeyFile``) are relative to."""
    checked = CheckedRegistry()
    top = RegistryFileSerializer(data=data)
    if not top.is_valid():
        for path, message in _flatten(top.errors):
            place = f"(top level).{path}" if message == UNKNOWN_KEY else path
            checked.problems.append(f"{place}: {message}")
        if {"parties", "schools"} & set(top.errors):
            return checked
    parties = data.get("parties") or []
    schools = data.get("schools") or []

    # Every named entry counts as a party for the schools, valid or not; roles only when valid.
    roles_by_name: dict[str, set[str] | None] = {p.name: set(p.roles) for p in Party.objects.all()}
    valid: list[tuple[int, dict]] = []
    for i, entry in enumerate(parties):
        name = entry.get("name") if isinstance(entry, Mapping) else None
        base = f"parties[{i}] ({name})" if _is_text(name) else f"parties[{i}]"
        if _is_text(name):
            roles_by_name[name] = None
        party = PartySerializer(data=entry, context={"base_dir": base_dir})
        if party.is_valid():
            valid.append((i, party.validated_data))
            roles_by_name[name] = set(party.validated_data["roles"])
            continue
        for path, message in _flatten(party.errors):
            # The name is not yet known valid at its own key and at the entry's unknown keys.
            plain = path == "name" or (message == UNKNOWN_KEY and "." not in path)
            checked.problems.append(_at(f"parties[{i}]" if plain else base, path, message))
    checked.parties = [party for _, party in valid]
    checked.problems += _party_conflicts(parties, valid)

    for i, entry in enumerate(schools):
        school = SchoolSerializer(data=entry)
        if not school.is_valid():
            checked.problems += [_at(f"schools[{i}]", *pair) for pair in _flatten(school.errors)]
            continue
        checked.schools.append(school.validated_data)
        checked.problems += _school_references(
            f"schools[{i}]", school.validated_data, roles_by_name
        )
    if checked.problems:
        checked.parties, checked.schools = [], []
    return checked


def _party_conflicts(entries: list, valid: list[tuple[int, dict]]) -> list[str]:
    """What no single party can see: names, portalIds, products and clients used twice, in
    the file or (for portalIds and clients) by a party already stored."""
    problems: list[str] = []
    seen_names: set[str] = set()
    for i, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, Mapping) else None
        if _is_text(name):
            if name in seen_names:
                problems.append(f"parties[{i}] ({name}).name: listed twice")
            seen_names.add(name)
    portal_ids: dict[str, str] = {}
    products: dict[str, str] = {}
    clients: dict[str, str] = {}
    for i, party in valid:
        name = party["name"]
        base = f"parties[{i}] ({name})"
        portal_id = party.get("portalId")
        if portal_id:
            if portal_id in portal_ids:
                problems.append(
                    f"{base}.portalId: {portal_id!r} also used by {portal_ids[portal_id]}"
                )
            portal_ids[portal_id] = name
            clash = Party.objects.filter(portal_id=portal_id).exclude(name=name).first()
            if clash:
                problems.append(f"{base}.portalId: {portal_id!r} already belongs to {clash.name}")
        for j, product_id in enumerate(party.get("products") or []):
            if product_id in products:
                owner = products[product_id]
                problems.append(f"{base}.products[{j}]: {product_id} is also listed under {owner}")
            products[product_id] = name
        for j, client in enumerate(party.get("clients") or []):
            client_id, where = client["clientId"], f"{base}.clients[{j}].clientId"
            if client_id in clients:
                problems.append(f"{where}: {client_id!r} is also used by {clients[client_id]}")
                continue
            clients[client_id] = name
            if Client.objects.filter(client_id=client_id).exclude(party__name=name).exists():
                problems.append(f"{where}: {client_id!r} belongs to another party")
    return problems


def _school_references(
    where: str, school: dict, roles_by_name: dict[str, set[str] | None]
) -> list[str]:
    """The parties a school names exist (an administration with the role school-admin), and
    its identifiers do not name two stored schools."""
    problems = [
        f"{where}.consents[{j}]: unknown party {name!r}"
        for j, name in enumerate(school.get("consents") or [])
        if name not in roles_by_name
    ]
    admin = school.get("administration")
    if admin is not None:
        if admin not in roles_by_name:
            problems.append(f"{where}.administration: unknown party {admin!r}")
        elif roles_by_name[admin] is not None and Role.SCHOOL_ADMIN not in roles_by_name[admin]:
            problems.append(f"{where}.administration: {admin} does not have the role school-admin")
    try:
        find_school(school)
    except AmbiguousSchool as exc:
        problems.append(f"{where}: {exc}")
    return problems
