"""The one worker machinery (``aanspraak.workers``): claiming with SKIP LOCKED and a lease,
finding what a worker still holds, batches within a time budget; shared by the outbound
drains and the enrollment resolver, which enqueue tasks by name (nothing imports tasks)."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest
from django.utils import timezone

from aanspraak.workers import Claim, claim_leased, lock_held, run_batches
from entitlements import outbox
from entitlements.models import EnrollmentLookup, OutboundMessage
from entitlements.services import enrollment
from tests.support.factories import make_order

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr("aanspraak.workers.batches.time.monotonic", clock)
    return clock


def _queue(batches: list[list[int]]):
    pending = list(batches)
    return lambda: Claim(pending.pop(0) if pending else [])


def test_batches_run_one_after_the_other_until_none_is_due(clock):
    log = []

    def start(claim):
        log.append(("start", claim.ids))
        return lambda: log.append(("finish", claim.ids))

    run = run_batches(_queue([[1, 2], [3]]), start, budget=10)
    assert (run.batches, run.more) == (2, False)
    assert log == [("start", [1, 2]), ("finish", [1, 2]), ("start", [3]), ("finish", [3])]


def test_overlapped_batches_claim_the_next_before_finishing_the_one_in_flight(clock):
    log = []
    queue = _queue([[1], [2], [3]])

    def claim_next():
        claim = queue()
        log.append(("claim", claim.ids))
        return claim

    def start(claim):
        log.append(("start", claim.ids))
        return lambda: log.append(("finish", claim.ids))

    run = run_batches(claim_next, start, budget=10, overlap=True)
    assert (run.batches, run.more) == (3, False)
    assert log == [
        ("claim", [1]),
        ("start", [1]),
        ("claim", [2]),
        ("start", [2]),
        ("finish", [1]),
        ("claim", [3]),
        ("start", [3]),
        ("finish", [2]),
        ("claim", []),
        ("finish", [3]),
    ]


@pytest.mark.parametrize("overlap", [False, True])
def test_a_spent_budget_stops_claiming_finishes_what_it_holds_and_asks_for_more(clock, overlap):
    claimed, finished = [], []

    def claim():
        claimed.append(len(claimed) + 1)
        return Claim([claimed[-1]])

    def start(batch):
        clock.now += 6  # each batch takes 6 of the 10 seconds
        return lambda: finished.append(batch.ids[0])

    run = run_batches(claim, start, budget=10, overlap=overlap)
    assert run.more and run.batches == 2
    assert claimed == finished == [1, 2]  # nothing claimed is left unfinished


@pytest.mark.django_db
def test_claims_skip_each_others_rows_and_lock_held_sorts_held_lost_and_gone(registry):
    make_order(registry, 3)
    mine = OutboundMessage.objects.filter(recipient=registry.licensor).order_by("id")
    lease = timezone.now() + dt.timedelta(minutes=5)
    first = claim_leased([mine], 2, lease, "next_attempt_at")
    second = claim_leased([mine.filter(next_attempt_at__isnull=True)], 5, lease, "next_attempt_at")
    assert len(first) == 2 and len(second) == 1 and not set(first.ids) & set(second.ids)
    assert set(
        OutboundMessage.objects.filter(id__in=first.ids).values_list("next_attempt_at", flat=True)
    ) == {lease}

    taken, gone = first.ids
    OutboundMessage.objects.filter(pk=taken).update(next_attempt_at=timezone.now())  # re-sent
    OutboundMessage.objects.filter(pk=gone).delete()
    held = lock_held(OutboundMessage, [*first.ids, *second.ids], lease, ("attempt_count",))
    assert held.rows == {second.ids[0]: (0,)}
    assert held.lost == [taken]


@pytest.mark.django_db
def test_the_drains_and_the_resolver_claim_through_it(registry):
    order = make_order(registry, 2, with_messages=True)
    drain_claim = outbox.claim_due(registry.licensor.pk)
    for e in order.entitlements.all():
        now = timezone.now()
        EnrollmentLookup.objects.create(entitlement=e, next_attempt_at=now, queued_at=now)
    lookup_claim = enrollment.claim_due()
    assert isinstance(drain_claim, Claim) and isinstance(lookup_claim, Claim)
    assert len(drain_claim) == len(lookup_claim) == 2
    assert set(EnrollmentLookup.objects.values_list("next_attempt_at", flat=True)) == {
        lookup_claim.lease
    }


def test_nothing_imports_a_tasks_module():
    """Services enqueue tasks by name after commit (``aanspraak.enqueue``): tasks → services,
    never the other way round."""
    offenders = []
    for app in ("aanspraak", "entitlements", "confirmations", "config"):
        for path in sorted((ROOT / app).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    module = node.module or ""
                    names = [module, *(f"{module}.{alias.name}" for alias in node.names)]
                if any(name == "tasks" or name.endswith(".tasks") for name in names):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders
