"""Convergence (docs/confirmations.md, "The rules"), as a property: any set of
confirmations and activations, arriving shuffled, with duplicates, applied in arbitrary batch
splits through the real service on PostgreSQL, interleaved with the hub's own steps (deliveries
recorded by ``mark_initialized``, the order expiring and the expiry job running), leaves every
entitlement, URL status and confirmation outcome exactly as the pure fold of
``confirmations.replay`` says for the sorted, de-duplicated events: an expectation computed from
the drawn events alone, without the database or the service."""

from __future__ import annotations

import datetime as dt
import itertools
import os
from collections import defaultdict
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from confirmations.models import Confirmation, ConfirmationKind
from confirmations.replay import Event, expiry_event, fold
from confirmations.services.apply import apply_all_pending, apply_pending_batch
from entitlements.models import (
    DeliveryOrder,
    Entitlement,
    EntitlementUrlStatus,
    OutboundMessage,
    StatusEvent,
)
from entitlements.outbox import mark_initialized
from entitlements.rules.expiry import expiry_moment
from entitlements.rules.transitions import Outcome
from entitlements.services.expiry import expire_due
from entitlements.statuses import (
    ACTIVATION_CODE_TYPES,
    END_DATE_STATUSES,
    DeliveryType,
    EntitlementStatus,
    EventCause,
    MessageState,
    UrlStatus,
)
from tests.support.confirm_helpers import (
    activation_body,
    licensor_body,
    portal_body,
    propose,
    request_to,
    store,
)
from tests.support.factories import make_order

# The orders expire at the end of 1 Sept 2026 (hub time) once the expiry step is drawn;
# confirmations are processed two hours before that moment up to one hour after it.
EXPIRATION = dt.date(2026, 9, 1)
MOMENT = expiry_moment(EXPIRATION, ZoneInfo("Europe/Amsterdam")).astimezone(dt.UTC)
NOT_YET = dt.date(2099, 7, 31)

ENT_STATUSES = ["created", "entitled", "licensed", "cancelled", "blocked"]
URL_STATUSES = ["initialized", "processed", "cancelled", "blocked", "expired"]


@dataclass
class World:
    registry: object
    orders: list
    entitlements: list
    # per entitlement: the requests a confirmation may answer, as (sender, message)
    requests: list[list[tuple[object, OutboundMessage]]]
    # the hub's initial requests to portals not yet delivered (a delivery step may record one)
    undelivered: list[OutboundMessage]
    # (entitlement pk, portal pk) of the initial portal requests delivered from the start
    delivered: set[tuple[int, int]]


@pytest.fixture
def world(registry):
    students = make_order(registry, 2, portals=[registry.portal, registry.other_portal])
    codes = make_order(
        registry, 1, delivery_type=DeliveryType.SCHOOL_ACTIVATIONCODES, portals=[registry.portal]
    )
    orders = [students, codes]
    DeliveryOrder.objects.filter(pk__in=[o.pk for o in orders]).update(expiration_date=NOT_YET)
    entitlements = [*students.entitlements.order_by("id"), *codes.entitlements.all()]
    requests = []
    undelivered = []
    delivered = set()
    for i, e in enumerate(entitlements):
        portal_request = request_to(e, registry.portal)
        if i % 2 == 0:  # some requests already delivered: base URL status initialized
            OutboundMessage.objects.filter(pk=portal_request.pk).update(
                state=MessageState.DELIVERED
            )
            EntitlementUrlStatus.objects.filter(entitlement=e, portal=registry.portal).update(
                status=UrlStatus.INITIALIZED
            )
            delivered.add((e.pk, registry.portal.pk))
        else:
            undelivered.append(portal_request)
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
            undelivered.append(other)
        requests.append(options)
    return World(registry, orders, entitlements, requests, undelivered, delivered)


spec = st.tuples(
    st.integers(0, 2),  # entitlement
    st.integers(0, 6),  # which request (past the last one: an activation)
    st.integers(0, 4),  # new status index
    st.integers(0, 3),  # hour of processedTimestamp (ties with the expiry moment on purpose)
)


@dataclass
class Item:
    """One drawn confirmation or activation: what is sent, and the event it folds as."""

    sender: object
    body: dict
    event: Event
    kind: str

    @property
    def late(self) -> bool:
        """Processed at or after the expiry moment: can only arrive once the order expired."""
        return self.event.effective_at >= MOMENT


def items_of(world: World, specs) -> list[Item]:
    """The body and the expected fold event per spec; receive ids unique per spec."""
    out = []
    for n, (ei, ri, si, hour) in enumerate(specs):
        e = world.entitlements[ei]
        at = MOMENT + dt.timedelta(hours=hour - 2)
        rid = f"r{n:03d}"
        options = world.requests[ei]
        if ri >= len(options):
            user = {"userMasterIdentifier": f"u{n}"}
            if e.activation_code is None:
                user = {"userMasterIdentifier": e.user_master_identifier}
            body = activation_body(e, at=at, ref=rid, user=user)
            event = Event(
                effective_at=at,
                ref=rid,
                sender=world.registry.licensor.pk,
                cause=EventCause.ACTIVATION,
                pk=n,
                new_status=EntitlementStatus.LICENSED,
                user=user,
            )
            out.append(Item(world.registry.licensor, body, event, ConfirmationKind.ACTIVATION))
            continue
        sender, message = options[ri]
        url = message.proposed_url_status is not None
        if url:
            body = portal_body(message, URL_STATUSES[si], at=at, receive_id=rid)
        else:
            body = licensor_body(message, ENT_STATUSES[si], at=at, receive_id=rid)
        event = Event(
            effective_at=at,
            ref=rid,
            sender=sender.pk,
            cause=EventCause.CONFIRMATION,
            pk=n,
            new_status=None if url else ENT_STATUSES[si],
            proposed_status=message.proposed_entitlement_status,
            proposed_end_date=message.proposed_end_date,
            portal=message.recipient_id if url else None,
            new_url_status=URL_STATUSES[si] if url else None,
            proposed_url_status=message.proposed_url_status,
        )
        out.append(Item(sender, body, event, ConfirmationKind.CONFIRMATION))
    return out


def snapshot(world: World) -> dict:
    ids = [e.pk for e in world.entitlements]
    return {
        "entitlements": {
            pk: rest
            for pk, *rest in Entitlement.objects.filter(pk__in=ids).values_list(
                "pk", "status", "end_date", "status_changed_at", "user_master_identifier"
            )
        },
        "urls": {
            (e, p): (status, changed)
            for e, p, status, changed in EntitlementUrlStatus.objects.filter(
                entitlement_id__in=ids
            ).values_list("entitlement_id", "portal_id", "status", "status_changed_at")
        },
        "outcomes": {
            (sender, kind, rid): (state, reason)
            for sender, kind, rid, state, reason in Confirmation.objects.values_list(
                "sender_id", "kind", "receive_id", "state", "reason"
            )
        },
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


def expected_state(world: World, items: list[Item], delivered: set, expired: bool) -> dict:
    """The pure fold per entitlement of its (de-duplicated) events, the expiry included when
    the order expired; base URL status initialized where the request was delivered."""
    tz = ZoneInfo("Europe/Amsterdam")
    by_entitlement = defaultdict(list)
    for item in items:
        ei = item.body["entitlementId"]
        by_entitlement[ei].append(item.event)
    out = {"entitlements": {}, "urls": {}, "outcomes": {}}
    for e in world.entitlements:
        base = {
            portal: UrlStatus.INITIALIZED
            if (e.pk, portal) in delivered
            else UrlStatus.UNINITIALIZED
            for portal in e.url_statuses.values_list("portal_id", flat=True)
        }
        events = list(by_entitlement[str(e.entitlement_id)])
        if expired:
            events.append(expiry_event(MOMENT))
        folded = fold(base, events, tz)
        changed = folded.status_cause.effective_at if folded.status_cause else None
        if e.entitlement_type in ACTIVATION_CODE_TYPES:
            user = (folded.user or {}).get("userMasterIdentifier")
        else:
            user = e.user_master_identifier
        end_date = folded.end_date if folded.status in END_DATE_STATUSES else None
        out["entitlements"][e.pk] = [folded.status, end_date, changed, user]
        for portal, status in folded.urls.items():
            cause = folded.url_causes[portal]
            out["urls"][(e.pk, portal)] = (status, cause.effective_at if cause else None)
        out["outcomes"].update(folded.outcomes)
    return out


def assert_matches(got: dict, expected: dict, items: list[Item], recorded_later: set) -> None:
    """``got`` (the database) is the fold's ``expected``. Where nothing in the fold set a
    status (cause None), its timestamp is whatever the row had (creation, delivery).
    ``recorded_later``: (entitlement, portal) whose delivery a drawn step recorded."""
    for pk, (status, end_date, changed, user) in expected["entitlements"].items():
        row = got["entitlements"][pk]
        assert [row[0], row[1], row[3]] == [status, end_date, user], pk
        if changed is not None:
            assert row[2] == changed, pk
    assert set(got["urls"]) == set(expected["urls"])
    for key, (status, changed) in expected["urls"].items():
        assert got["urls"][key][0] == status, key
        if changed is not None:
            assert got["urls"][key][1] == changed, key
    assert len(got["outcomes"]) == len(items)
    for item in items:
        decision = expected["outcomes"][item.event.pk]
        state, reason = got["outcomes"][(item.sender.pk, item.kind, item.event.ref)]
        entitlement = Entitlement.objects.get(entitlement_id=item.body["entitlementId"]).pk
        if (entitlement, item.event.portal) not in recorded_later:
            assert (state, reason) == (decision.outcome.value, decision.reason), item.event
        elif decision.outcome is Outcome.DUPLICATE and item.event.new_url_status == "initialized":
            # A portal's confirmation that came before the hub recorded the delivery was
            # judged from uninitialized (it proved the delivery): "initialized" was applied
            # then, and stays so unless a later replay re-judges it from initialized.
            assert state in (Outcome.APPLIED, Outcome.DUPLICATE), item.event
        else:
            assert state == decision.outcome.value, item.event


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
def test_any_order_of_arrivals_deliveries_and_expiry_converges_to_the_fold(world, data, specs):
    items = items_of(world, specs)
    arrival = data.draw(st.permutations(range(len(items))), label="arrival")
    duplicates = data.draw(st.lists(st.integers(0, len(items) - 1), max_size=4), label="dups")
    for d in duplicates:
        position = data.draw(st.integers(0, len(arrival)), label="dup position")
        arrival = [*arrival[:position], d, *arrival[position:]]
    # after each arrival, maybe run one batch of some size
    batches = data.draw(
        st.lists(st.integers(0, 4), min_size=len(arrival), max_size=len(arrival)),
        label="batch sizes",
    )
    steps: list[tuple] = [("arrive", i, b) for i, b in zip(arrival, batches, strict=True)]
    # The hub's own steps at drawn places: deliveries of some requests, maybe the expiry.
    deliveries = st.lists(st.sampled_from(world.undelivered), unique_by=lambda m: m.pk)
    for message in data.draw(deliveries, label="deliveries"):
        position = data.draw(st.integers(0, len(steps)), label="delivery position")
        steps.insert(position, ("deliver", message))
    expired = data.draw(st.booleans(), label="expires")
    if expired:
        position = data.draw(st.integers(0, len(steps)), label="expiry position")
        head, tail = steps[:position], steps[position:]

        def is_late(step):
            return step[0] == "arrive" and items[step[1]].late

        # Confirmations processed after the expiry moment cannot arrive before it.
        late = [s for s in head if is_late(s)]
        steps = [*(s for s in head if not is_late(s)), ("expire",), *late, *tail]
    recorded_later = {(s[1].entitlement_id, s[1].recipient_id) for s in steps if s[0] == "deliver"}

    def run():
        for step in steps:
            if step[0] == "arrive":
                _kind, index, batch = step
                store(items[index].sender, items[index].body)
                if batch:
                    apply_pending_batch(batch_size=batch)
            elif step[0] == "deliver":
                message = step[1]
                OutboundMessage.objects.filter(pk=message.pk).update(state=MessageState.DELIVERED)
                mark_initialized([message], timezone.now())
            else:
                DeliveryOrder.objects.filter(pk__in=[o.pk for o in world.orders]).update(
                    expiration_date=EXPIRATION
                )
                expire_due()
        apply_all_pending(batch_size=3)
        check_event_chains(world)
        return snapshot(world)

    got = isolated(run)
    expected = expected_state(world, items, world.delivered | recorded_later, expired)
    assert_matches(got, expected, items, recorded_later)
