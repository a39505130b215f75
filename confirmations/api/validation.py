"""The request-path validation of ``PUT /entitlements/confirmations`` and
``PUT /usage/activation``: a plain-Python check of the common, valid body, with the DRF
serializers (``serializers.py``, which also document the API) as the one source of errors.

Building and running a nested DRF serializer costs 0.7-1.1 ms of Python per request, more
than the rest of the request together. The fast check here only ever *accepts*: it answers the
validated data when the body is certainly valid by the serializer's rules (a stricter subset:
e.g. it does not strip whitespace, and leaves non-ASCII strings to the serializer), and None
otherwise; then the serializer runs and answers the exact 400 it always did.
``tests/confirmations/test_validation.py`` holds the two to agreement.
"""

from __future__ import annotations

import datetime as dt

from aanspraak.choices import OrganisationIdType, UserIdType
from entitlements.statuses import EntitlementType

from .serializers import (
    CONFIRMABLE_ENTITLEMENT_STATUSES,
    CONFIRMABLE_URL_STATUSES,
    RFC3339,
    ActivationSerializer,
    ConfirmationSerializer,
)

_CONFIRMATION_REQUIRED = frozenset(
    {
        "entitlementReferenceId",
        "entitlementReceiveId",
        "entitlementId",
        "productId",
        "processedTimestamp",
    }
)
_CONFIRMATION_FIELDS = _CONFIRMATION_REQUIRED | {"newEntitlementStatus", "newUrlStatus"}
_URL_STATUS_FIELDS = frozenset({"portal", "urlStatus"})
_ENTITLEMENT_STATUSES = frozenset(CONFIRMABLE_ENTITLEMENT_STATUSES)
_URL_STATUSES = frozenset(CONFIRMABLE_URL_STATUSES)

_ACTIVATION_FIELDS = frozenset(
    {
        "initialActivationReferenceId",
        "entitlementId",
        "productId",
        "entitlementType",
        "school",
        "user",
        "activationTimestamp",
    }
)
_ACTIVATION_STRINGS = ("initialActivationReferenceId", "entitlementId", "productId")
_ENTITLEMENT_TYPES = frozenset(EntitlementType.values)
_SCHOOL_FIELDS = frozenset({"organisationMasterIdentifier", "organisationIds"})
_ORGANISATION_ID_FIELDS = frozenset({"organisationId", "organisationIdType"})
_ORGANISATION_ID_TYPES = frozenset(OrganisationIdType.values)
_USER_FIELDS = frozenset({"userMasterIdentifier", "userIds"})
_USER_ID_FIELDS = frozenset({"userId", "userIdType"})
_USER_ID_TYPES = frozenset(UserIdType.values)


def _plain(value, max_length: int = 200) -> bool:
    """A string StrictCharField takes unchanged: non-blank, no surrounding whitespace (the
    serializer would strip it), ASCII (no surrogates), no NUL, within the length."""
    return (
        type(value) is str
        and 0 < len(value) <= max_length
        and value.isascii()
        and value.strip() == value
        and "\x00" not in value
    )


def _moment(value) -> dt.datetime | None:
    """Rfc3339Field's conversion, or None where it would fail."""
    if type(value) is not str or not RFC3339.match(value):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(dt.UTC)


def _fast_confirmation(data) -> dict | None:
    if type(data) is not dict or not data.keys() <= _CONFIRMATION_FIELDS:
        return None
    if not data.keys() >= _CONFIRMATION_REQUIRED:
        return None
    out = {}
    for name in _CONFIRMATION_REQUIRED:
        if name == "processedTimestamp":
            continue
        if not _plain(data[name]):
            return None
        out[name] = data[name]
    moment = _moment(data["processedTimestamp"])
    if moment is None:
        return None
    out["processedTimestamp"] = moment
    if "newEntitlementStatus" in data:
        status = data["newEntitlementStatus"]
        if type(status) is not str or status not in _ENTITLEMENT_STATUSES:
            return None
        out["newEntitlementStatus"] = status
    if "newUrlStatus" in data:
        url = data["newUrlStatus"]
        if type(url) is not dict or not url.keys() <= _URL_STATUS_FIELDS:
            return None
        status = url.get("urlStatus")
        if type(status) is not str or status not in _URL_STATUSES:
            return None
        checked = {"urlStatus": status}
        if "portal" in url:
            if not _plain(url["portal"]):
                return None
            checked["portal"] = url["portal"]
        out["newUrlStatus"] = checked
    elif "newEntitlementStatus" not in out:
        return None
    return out


def _ids_ok(ids, fields: frozenset, id_key: str, type_key: str, types, max_length) -> bool:
    if type(ids) is not list:
        return False
    for item in ids:
        if type(item) is not dict or item.keys() != fields:
            return False
        if not _plain(item[id_key], max_length):
            return False
        if type(item[type_key]) is not str or item[type_key] not in types:
            return False
    return True


def _reference_ok(ref, fields, master_key, ids_key, ids_check, max_length) -> bool:
    if type(ref) is not dict or not ref.keys() <= fields:
        return False
    master = ref.get(master_key)
    if master_key in ref and not _plain(master, max_length):
        return False
    if ids_key in ref and not ids_check(ref[ids_key]):
        return False
    return bool(master) or bool(ref.get(ids_key))


def _fast_activation(data) -> dict | None:
    if type(data) is not dict or data.keys() != _ACTIVATION_FIELDS:
        return None
    for name in _ACTIVATION_STRINGS:
        if not _plain(data[name]):
            return None
    kind = data["entitlementType"]
    if type(kind) is not str or kind not in _ENTITLEMENT_TYPES:
        return None
    school_ok = _reference_ok(
        data["school"],
        _SCHOOL_FIELDS,
        "organisationMasterIdentifier",
        "organisationIds",
        lambda ids: _ids_ok(
            ids,
            _ORGANISATION_ID_FIELDS,
            "organisationId",
            "organisationIdType",
            _ORGANISATION_ID_TYPES,
            200,
        ),
        200,
    )
    user_ok = school_ok and _reference_ok(
        data["user"],
        _USER_FIELDS,
        "userMasterIdentifier",
        "userIds",
        lambda ids: _ids_ok(ids, _USER_ID_FIELDS, "userId", "userIdType", _USER_ID_TYPES, 500),
        500,
    )
    moment = _moment(data["activationTimestamp"]) if user_ok else None
    if moment is None:
        return None
    return {
        "initialActivationReferenceId": data["initialActivationReferenceId"],
        "entitlementId": data["entitlementId"],
        "productId": data["productId"],
        "entitlementType": kind,
        "activationTimestamp": moment,
    }


def validate_confirmation(data) -> dict:
    """The validated EntitlementConfirmation (seed 003) fields of ``data``; raises DRF's
    ValidationError, from ConfirmationSerializer, when it is not valid."""
    checked = _fast_confirmation(data)
    if checked is not None:
        return checked
    serializer = ConfirmationSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def validate_activation(data) -> dict:
    """The validated InitialActivation fields of ``data`` the request stores (its
    ``school`` and ``user`` are checked, and kept in the body as received); raises DRF's
    ValidationError, from ActivationSerializer, when it is not valid."""
    checked = _fast_activation(data)
    if checked is not None:
        return checked
    serializer = ActivationSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
