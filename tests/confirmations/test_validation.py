"""The plain-Python check of the PUT bodies (confirmations/api/validation.py) agrees with the
DRF serializers that document the API: whatever it accepts the serializer accepts with the
same values, and everything else goes to the serializer (so the 400s stay the same)."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ValidationError

from confirmations.api import validation
from confirmations.api.serializers import ActivationSerializer, ConfirmationSerializer
from tests.confirmations.test_api import BAD_ACTIVATIONS, BAD_BODIES

LICENSOR = {
    "entitlementReferenceId": "5b0f2a3e-8c1d-4a5e-9b7f-1234567890ab",
    "entitlementReceiveId": "rcv-1",
    "entitlementId": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
    "productId": "9789001000011",
    "processedTimestamp": "2026-09-01T10:00:00.250+02:00",
    "newEntitlementStatus": "entitled",
}
PORTAL = {
    **{k: v for k, v in LICENSOR.items() if k != "newEntitlementStatus"},
    "newUrlStatus": {"portal": "portal-zuid", "urlStatus": "processed"},
}
ACTIVATION = {
    "initialActivationReferenceId": "act-1",
    "entitlementId": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
    "productId": "9789001000011",
    "entitlementType": "school-student",
    "school": {
        "organisationMasterIdentifier": "110A133",
        "organisationIds": [{"organisationId": "00AA", "organisationIdType": "BP_ID"}],
    },
    "user": {
        "userMasterIdentifier": "https://ketenid.nl/201703/abc",
        "userIds": [{"userId": "u1", "userIdType": "eduID"}],
    },
    "activationTimestamp": "2026-09-01T08:00:00Z",
}


def plain(value):
    """Validated data as plain dicts and lists (the serializer answers OrderedDicts)."""
    return json.loads(json.dumps(value, default=str))


def serializer_says(serializer_class, body):
    serializer = serializer_class(data=body)
    return serializer.validated_data if serializer.is_valid() else None


def assert_agrees(fast, serializer_class, body, used_keys):
    checked = fast(body)
    if checked is None:
        return False
    expected = serializer_says(serializer_class, body)
    assert expected is not None, f"the fast check accepted a body the serializer refuses: {body}"
    assert plain({k: checked[k] for k in used_keys if k in checked}) == plain(
        {k: expected[k] for k in used_keys if k in expected}
    )
    return True


CONFIRMATION_KEYS = [*LICENSOR, "newUrlStatus"]
ACTIVATION_KEYS = [
    "initialActivationReferenceId",
    "entitlementId",
    "productId",
    "entitlementType",
    "activationTimestamp",
]


@pytest.mark.parametrize(
    "body",
    [
        LICENSOR,
        PORTAL,
        {**PORTAL, "newUrlStatus": {"urlStatus": "expired"}},
        {**LICENSOR, "newUrlStatus": {"urlStatus": "cancelled"}},
        {**LICENSOR, "processedTimestamp": "2026-09-01t08:00:00z"},
    ],
)
def test_valid_confirmations_take_the_fast_path_with_the_serializers_values(body):
    assert assert_agrees(
        validation._fast_confirmation, ConfirmationSerializer, body, CONFIRMATION_KEYS
    )


@pytest.mark.parametrize(
    "body",
    [
        ACTIVATION,
        {**ACTIVATION, "school": {"organisationIds": ACTIVATION["school"]["organisationIds"]}},
        {**ACTIVATION, "user": {"userIds": ACTIVATION["user"]["userIds"]}},
        {**ACTIVATION, "user": {"userMasterIdentifier": "x" * 500}},
    ],
)
def test_valid_activations_take_the_fast_path_with_the_serializers_values(body):
    assert assert_agrees(validation._fast_activation, ActivationSerializer, body, ACTIVATION_KEYS)


@pytest.mark.parametrize(("field", "mutate"), BAD_BODIES, ids=[f for f, _ in BAD_BODIES])
def test_every_bad_confirmation_of_the_api_tests_goes_to_the_serializer(field, mutate):
    body = copy.deepcopy(LICENSOR)
    mutate(body)
    assert validation._fast_confirmation(body) is None
    assert serializer_says(ConfirmationSerializer, body) is None


@pytest.mark.parametrize(("field", "mutate"), BAD_ACTIVATIONS, ids=[f for f, _ in BAD_ACTIVATIONS])
def test_every_bad_activation_of_the_api_tests_goes_to_the_serializer(field, mutate):
    body = copy.deepcopy(ACTIVATION)
    mutate(body)
    assert validation._fast_activation(body) is None
    assert serializer_says(ActivationSerializer, body) is None


@pytest.mark.parametrize(
    "value",
    [" padded", "padded ", "", "   ", "nul\x00", "x" * 201, "ünïcode", 5, None, ["a"], {"a": 1}],
)
def test_strings_the_serializer_would_change_or_refuse_are_left_to_it(value):
    body = {**LICENSOR, "entitlementReceiveId": value}
    assert validation._fast_confirmation(body) is None
    # ...and the serializer decides, as it always did: it strips padding, refuses the rest
    expected = serializer_says(ConfirmationSerializer, body)
    if expected is None:
        with pytest.raises(ValidationError):
            validation.validate_confirmation(body)
    else:
        assert validation.validate_confirmation(body) == expected
    if value in (" padded", "padded "):
        assert expected["entitlementReceiveId"] == "padded"
    if value == "ünïcode":
        assert expected["entitlementReceiveId"] == "ünïcode"


def test_validate_raises_the_serializers_error():
    with pytest.raises(ValidationError) as raised:
        validation.validate_confirmation({**LICENSOR, "productid": "1"})
    serializer = ConfirmationSerializer(data={**LICENSOR, "productid": "1"})
    assert not serializer.is_valid()
    assert raised.value.detail == serializer.errors


# Values near and around the valid ones, for any field at any level.
_values = st.one_of(
    st.sampled_from(
        [
            "x",
            " x",
            "",
            "x" * 200,
            "x" * 201,
            "x" * 500,
            "x" * 501,
            "é",
            "entitled",
            "licensed",
            "expired",
            "processed",
            "uninitialized",
            "school-student",
            "BP_ID",
            "eduID",
            "portal-zuid",
            "2026-09-01T08:00:00Z",
            "2026-09-01T08:00:00",
            "2026-02-30T08:00:00Z",
            "2026-09-01T08:00:00+25:00",
        ]
    ),
    st.none(),
    st.integers(),
    st.booleans(),
    st.just([]),
    st.just({}),
)


def _mutations(base: dict):
    def mutate(draw_pairs):
        body = copy.deepcopy(base)
        for path, value in draw_pairs:
            target = body
            for key in path[:-1]:
                target = target.get(key) if isinstance(target, dict) else None
                if isinstance(target, list):
                    target = target[0] if target else None
                if target is None:
                    break
            if isinstance(target, dict):
                if value is _DROP:
                    target.pop(path[-1], None)
                else:
                    target[path[-1]] = value
        return body

    paths = []

    def walk(node, prefix):
        for key, value in node.items():
            paths.append((*prefix, key))
            if isinstance(value, dict):
                walk(value, (*prefix, key))
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                walk(value[0], (*prefix, key))

    walk(base, ())
    paths += [("unknown",), (*paths[-1][:-1], "unknown")]
    pair = st.tuples(st.sampled_from(paths), st.one_of(_values, st.just(_DROP)))
    return st.lists(pair, max_size=3).map(mutate)


_DROP = object()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.one_of(_mutations(LICENSOR), _mutations(PORTAL)))
def test_fast_confirmation_never_accepts_what_the_serializer_refuses(body):
    assert_agrees(validation._fast_confirmation, ConfirmationSerializer, body, CONFIRMATION_KEYS)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_mutations(ACTIVATION))
def test_fast_activation_never_accepts_what_the_serializer_refuses(body):
    assert_agrees(validation._fast_activation, ActivationSerializer, body, ACTIVATION_KEYS)
