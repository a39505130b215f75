"""The one writer of status changes (``entitlements.status``): every move is checked against
the transition table whatever its cause, a refused move writes nothing, and every path that
changes a status (confirmation, activation, delivery, expiry, an unresolved enrollment of a
cancelled order) writes its events through it."""

from __future__ import annotations

import ast
import datetime as dt
import itertools
from pathlib import Path

import pytest
from django.utils import timezone

import entitlements.status.write as writer
from confirmations.services.apply import apply_all_pending
from entitlements.models import (
    DeliveryOrder,
    EnrollmentLookup,
    Entitlement,
    EntitlementUrlStatus,
    StatusEvent,
)
from entitlements.outbox import mark_initialized
from entitlements.rules.transitions import MOVES, SOURCES, TERMINAL, Cause, Subject, sources
from entitlements.services.cancel import ENDED_URL_STATUSES, PROPOSABLE_FROM, cancel_unresolved
from entitlements.services.expiry import expire_due
from entitlements.status import IllegalMove, StatusChange, UrlChange, write_changes
from entitlements.statuses import DeliveryType, EntitlementStatus, EventCause, UrlStatus
from tests.support.confirm_helpers import (
    T0,
    activation_body,
    licensor_body,
    portal_body,
    request_to,
    store,
)
from tests.support.factories import make_order

ROOT = Path(__file__).resolve().parents[2]


def cause(kind: str = EventCause.CONFIRMATION) -> Cause:
    return Cause(kind, None, "ref-1", T0)


# --- the table, derived --------------------------------------------------------------------


def test_terminal_and_source_statuses_are_derived_from_the_table():
    for subject, table in MOVES.items():
        assert TERMINAL[subject] == {s for s, moves in table.items() if not moves}
        for new in table:
            assert sources(subject, new) == {s for s in table if new in table[s]}
    assert SOURCES[Subject.URL][UrlStatus.INITIALIZED] == {UrlStatus.UNINITIALIZED}
    assert sorted(TERMINAL[Subject.ENTITLEMENT]) == ["blocked", "cancelled", "expired"]
    # What cancel/block read from it: the same values it listed before.
    assert PROPOSABLE_FROM == {
        "cancelled": ("created", "entitled"),
        "blocked": ("created", "entitled", "licensed"),
    }
    assert sorted(ENDED_URL_STATUSES) == ["blocked", "cancelled", "expired"]


# --- the check -----------------------------------------------------------------------------


def _illegal(subject: Subject) -> list[tuple[str, str]]:
    table = MOVES[subject]
    return [(old, new) for old, new in itertools.product(table, table) if new not in table[old]]


@pytest.mark.parametrize("kind", EventCause.values)
def test_every_move_outside_the_table_is_refused_whatever_the_cause(kind):
    """Refused before a statement runs (no database needed): the check is in memory."""
    for old, new in _illegal(Subject.ENTITLEMENT):
        if old == new:
            continue  # the same status again is a timestamp change, not a move
        with pytest.raises(IllegalMove, match=f"status {old} → {new}"):
            write_changes([StatusChange(1, old, new, None, cause(kind))], [], T0)
    for old, new in _illegal(Subject.URL):
        if old == new:
            continue
        with pytest.raises(IllegalMove, match=f"{old} → {new}"):
            write_changes([], [UrlChange(1, 1, 2, old, new, cause(kind))], T0)


def test_a_replay_may_write_any_status_the_table_knows_but_no_other():
    with pytest.raises(IllegalMove):
        write_changes([StatusChange(1, "created", "archived", None, cause())], [], T0, replay=True)
    with pytest.raises(IllegalMove):
        write_changes([], [UrlChange(1, 1, 2, "processed", "gone", cause())], T0, replay=True)


@pytest.mark.django_db
@pytest.mark.parametrize("kind", EventCause.values)
def test_a_refused_change_writes_nothing_not_even_the_legal_ones_beside_it(registry, kind):
    order = make_order(registry, 2, with_messages=False)
    first, second = order.entitlements.order_by("id")
    Entitlement.objects.filter(pk=first.pk).update(status="licensed")
    url = EntitlementUrlStatus.objects.get(entitlement=second)
    legal = StatusChange(second.pk, "created", "entitled", None, cause(kind))
    illegal = StatusChange(first.pk, "licensed", "cancelled", dt.date(2027, 1, 1), cause(kind))
    url_change = UrlChange(url.pk, second.pk, url.portal_id, url.status, "processed", cause(kind))
    with pytest.raises(IllegalMove, match="licensed → cancelled"):
        write_changes([legal, illegal], [url_change], timezone.now())
    assert not StatusEvent.objects.exists()
    assert dict(order.entitlements.values_list("pk", "status")) == {
        first.pk: "licensed",
        second.pk: "created",
    }
    assert EntitlementUrlStatus.objects.get(pk=url.pk).status == url.status


@pytest.mark.django_db
def test_legal_moves_are_written_with_their_events(registry):
    order = make_order(registry, 1, with_messages=False)
    e = order.entitlements.get()
    url = e.url_statuses.get()
    at = T0 + dt.timedelta(hours=2)
    change = Cause(EventCause.ADMIN, 7, "ticket-7", at)
    written = write_changes(
        [StatusChange(e.pk, "created", "blocked", dt.date(2027, 1, 31), change)],
        [UrlChange(url.pk, e.pk, url.portal_id, url.status, "blocked", change)],
        timezone.now(),
    )
    assert (written.entitlements, written.url_statuses, written.events) == (1, 1, 2)
    e.refresh_from_db()
    assert (e.status, e.end_date, e.status_changed_at) == ("blocked", dt.date(2027, 1, 31), at)
    assert EntitlementUrlStatus.objects.get(pk=url.pk).status == "blocked"
    events = set(
        StatusEvent.objects.values_list(
            "portal_id", "from_status", "to_status", "cause", "cause_pk", "cause_ref"
        )
    )
    assert events == {
        (None, "created", "blocked", "admin", 7, "ticket-7"),
        (url.portal_id, url.status, "blocked", "admin", 7, "ticket-7"),
    }


# --- every path goes through it ------------------------------------------------------------


@pytest.fixture
def through_the_writer(monkeypatch):
    """The events each call of the one writer inserted, by cause."""
    seen: list[str] = []
    insert = writer.insert_rows

    def spy(model, fields, rows, same=None):
        if model is StatusEvent:
            seen.extend(row[fields.index("cause")] for row in rows)
        return insert(model, fields, rows, same)

    monkeypatch.setattr(writer, "insert_rows", spy)
    return seen


@pytest.mark.django_db
def test_every_cause_writes_its_events_through_the_one_writer(registry, through_the_writer):
    students = make_order(registry, 3)
    first, second, third = students.entitlements.order_by("id")
    codes = make_order(registry, 1, delivery_type=DeliveryType.SCHOOL_ACTIVATIONCODES)
    code = codes.entitlements.get()

    # confirmation and activation: the worker's replay
    store(registry.licensor, licensor_body(request_to(first, registry.licensor), "entitled"))
    store(registry.portal, portal_body(request_to(first, registry.portal)))
    store(registry.licensor, activation_body(code))
    apply_all_pending()
    # delivery: a portal request delivered
    mark_initialized([request_to(second, registry.portal)], timezone.now())
    # expiry (the factory's orders are valid until 31 July 2027)
    expire_due(today=dt.date(2027, 8, 1))
    # enrollment: the hub cancels an unresolved student of a cancelled order itself
    unresolved = make_order(registry, 1, with_messages=False)
    EnrollmentLookup.objects.create(
        entitlement=unresolved.entitlements.get(),
        state=EnrollmentLookup.State.FAILED,
        queued_at=timezone.now(),
    )
    DeliveryOrder.objects.filter(pk=unresolved.pk).update(
        status="cancelled", end_date=dt.date(2026, 9, 30)
    )
    assert cancel_unresolved([unresolved.pk]) == 1

    written = sorted(StatusEvent.objects.values_list("cause", flat=True))
    assert written == sorted(through_the_writer)
    assert set(written) == {"confirmation", "activation", "delivery", "expiry", "intake"}
    assert Entitlement.objects.get(pk=third.pk).status == EntitlementStatus.EXPIRED


def test_no_module_but_the_writer_writes_status_columns_or_events():
    """A static guard: outside ``entitlements/status/``, no code of the apps names the
    ``StatusEvent`` model for writing, nor updates an entitlement's or URL status's
    ``status`` (reads, the admin's view-only pages and migrations aside)."""
    offenders = []
    for app in ("aanspraak", "entitlements", "confirmations"):
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "/migrations/" in relative or relative.startswith("entitlements/status/"):
                continue
            if relative in {"entitlements/models.py", "entitlements/admin.py"}:
                continue
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Name) and node.id == "StatusEvent":
                    offenders.append(f"{relative}:{node.lineno} names StatusEvent")
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in {"update", "bulk_update"}
                    and any(k.arg in {"status", "status_changed_at"} for k in node.keywords)
                ):
                    offenders.append(f"{relative}:{node.lineno} updates a status")
    assert not offenders, offenders
