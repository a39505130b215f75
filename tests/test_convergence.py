"""Convergence (issue 4 §3), as a property: any set of confirmations, arriving shuffled, with
duplicates, applied in arbitrary batch splits through the real service on PostgreSQL, leaves
every entitlement, URL status and confirmation outcome exactly as applying each one once, in
(processedTimestamp, entitlementReceiveId) order."""

from __future__ import annotations

import datetime as dt
import itertools
import os
from collections import defaultdict
from dataclasses import dataclass

import pytest
from django.db import transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from confirmations.models import Confirmation
from confirmations.services.apply import apply_all_pending, apply_pending_batch
from entitlements.models import Entitlement, EntitlementUrlStatus, OutboundMessage, StatusEvent
from entitlements.statuses import DeliveryType, MessageState
from tests.confirm_helpers import (
    T0,
    activation_body,
    licensor_body,
    portal_body,
    propose,
    request_to,
    store,
)
from tests.factories import make_order

ENT_STATUSES = ["created", "entitled", "licensed", "cancelled", "blocked"]
URL_STATUSES = ["initialized", "processed", "cancelled", "blocked", "expired"]


@dataclass
class World:
    registry: object
    entitlements: list
    # per entitlement: the requests a confirmation may answer, as (sender, message)
    requests: list[list[tuple[object, OutboundMessage]]]


@pytest.fixture
def world(registry):
    students = make_order(registry, 2, portals=[registry.portal, registry.other_portal])
    codes = make_order(
        registry, 1, delivery_type=DeliveryType.SCHOOL_ACTIVATIONCODES, portals=[registry.portal]
    )
    entitlements = [*students.entitlements.order_by("id"), *codes.entitlements.all()]
    requests = []
    for i, e in enumerate(entitlements):
        portal_request = request_to(e, registry.portal)
        if i % 2 == 0:  # some requests already delivered: base URL status initialized
            OutboundMessage.objects.filter(pk=portal_request.pk).update(
                state=MessageState.DELIVERED
            )
        options = [
            (registry.licensor, request_to(e, registry.licensor)),
            (registry.portal, portal_request),
            (
                registry.licensor,
                propose(e, registry.licensor, status="cancelled", end_date=dt.date(2027, 1, 31)),
            ),
            (registry.licensor, propose(e, registry.licensor, status="blocked")),
            (registry.portal, propose(e, registry.portal, url_status="cancelled")),
        ]
        other = request_to(e, registry.other_portal)
        if other is not None:
            options.append((registry.other_portal, other))
        requests.append(options)
    return World(registry, entitlements, requests)


spec = st.tuples(
    st.integers(0, 2),  # entitlement
    st.integers(0, 6),  # which request (past the last one: an activation)
    st.integers(0, 4),  # new status index
    st.integers(0, 3),  # hour of processedTimestamp (ties on purpose)
)


def bodies(world: World, specs) -> list[tuple[object, dict, tuple]]:
    """(sender, body, sort key) per spec; receive ids unique per spec."""
    out = []
    for n, (ei, ri, si, hour) in enumerate(specs):
        e = world.entitlements[ei]
        at = T0 + dt.timedelta(hours=hour)
        rid = f"r{n:03d}"
        options = world.requests[ei]
        if ri >= len(options):
            body = activation_body(e, at=at, ref=rid, user={"userMasterIdentifier": f"u{n}"})
            if e.activation_code is None:
                body["user"] = {"userMasterIdentifier": e.user_master_identifier}
            out.append((world.registry.licensor, body, (at, rid)))
            continue
        sender, message = options[ri]
        if message.proposed_url_status:
            body = portal_body(message, URL_STATUSES[si], at=at, receive_id=rid)
        else:
            body = licensor_body(message, ENT_STATUSES[si], at=at, receive_id=rid)
        out.append((sender, body, (at, rid)))
    return out


def snapshot(world: World) -> dict:
    ids = [e.pk for e in world.entitlements]
    return {
        "entitlements": sorted(
            Entitlement.objects.filter(pk__in=ids).values_list(
                "pk", "status", "end_date", "status_changed_at", "user_master_identifier"
            )
        ),
        "urls": sorted(
            EntitlementUrlStatus.objects.filter(entitlement_id__in=ids).values_list(
                "entitlement_id", "portal_id", "status", "status_changed_at"
            )
        ),
        "outcomes": sorted(
            Confirmation.objects.values_list("sender_id", "kind", "receive_id", "state", "reason")
        ),
    }


def check_event_chains(world: World) -> None:
    """Every recorded change starts where the previous one ended, and the last one ends in
    the current status: the history is a consistent chain, nothing applied twice."""
    chains = defaultdict(list)
    for event in StatusEvent.objects.order_by("id"):
        chains[(event.entitlement_id, event.portal_id)].append(event)
    for (entitlement, portal), events in chains.items():
        for before, after in itertools.pairwise(events):
            assert before.to_status == after.from_status
        if portal is None:
            current = Entitlement.objects.get(pk=entitlement).status
        else:
            current = EntitlementUrlStatus.objects.get(
                entitlement_id=entitlement, portal_id=portal
            ).status
        assert events[-1].to_status == current


class Rollback(Exception):
    pass


def isolated(fn):
    """Run ``fn`` in a savepoint that is rolled back; return its result."""
    box = {}
    try:
        with transaction.atomic():
            box["result"] = fn()
            raise Rollback
    except Rollback:
        pass
    return box["result"]


@pytest.mark.django_db
@settings(
    max_examples=int(os.environ.get("CONVERGENCE_EXAMPLES", "40")),
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), specs=st.lists(spec, min_size=1, max_size=10))
def test_any_arrival_order_duplicates_and_batches_converge(world, data, specs):
    items = bodies(world, specs)

    def sorted_once():
        for sender, body, _key in sorted(items, key=lambda item: item[2]):
            store(sender, body)
            apply_all_pending(batch_size=1)
        return snapshot(world)

    arrival = data.draw(st.permutations(range(len(items))), label="arrival")
    duplicates = data.draw(st.lists(st.integers(0, len(items) - 1), max_size=5), label="dups")
    for d in duplicates:
        position = data.draw(st.integers(0, len(arrival)), label="dup position")
        arrival = [*arrival[:position], d, *arrival[position:]]
    # after each arrival, maybe run one batch of some size
    batches = data.draw(
        st.lists(st.integers(0, 4), min_size=len(arrival), max_size=len(arrival)),
        label="batch sizes",
    )

    def shuffled():
        for index, batch in zip(arrival, batches, strict=True):
            sender, body, _key = items[index]
            store(sender, body)
            if batch:
                apply_pending_batch(batch_size=batch)
        apply_all_pending(batch_size=3)
        check_event_chains(world)
        return snapshot(world)

    expected = isolated(sorted_once)
    got = isolated(shuffled)
    assert got == expected
    assert all(state != "pending" for *_rest, state, _reason in got["outcomes"])
