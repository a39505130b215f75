"""The worker's service: checks against the hub's requests, the transition rules, replay of
late confirmations, activations, expiry, events, and a constant number of queries per batch."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from confirmations.models import Confirmation
from confirmations.services.apply import apply_all_pending, apply_pending_batch
from entitlements.models import Entitlement, OutboundMessage, StatusEvent
from entitlements.statuses import DeliveryType, MessageState
from tests.support.confirm_helpers import (
    T0,
    activation_body,
    licensor_body,
    portal_body,
    propose,
    request_to,
    store,
)
from tests.support.factories import make_order

pytestmark = pytest.mark.django_db
H = dt.timedelta(hours=1)


@pytest.fixture
def order(registry):
    return make_order(registry, 3)


@pytest.fixture
def ent(order):
    return order.entitlements.order_by("id").first()


def outcome(receive_id):
    row = Confirmation.objects.get(receive_id=receive_id)
    return row.state, row.reason


def confirm(registry, ent, status, *, at=T0, rid=None, message=None):
    body = licensor_body(
        message or request_to(ent, registry.licensor), status, at=at, receive_id=rid
    )
    store(registry.licensor, body)
    return body["entitlementReceiveId"]


def test_entitled_is_applied_with_event_and_timestamps(registry, ent):
    before = ent.date_last_modified
    rid = confirm(registry, ent, "entitled")
    assert apply_all_pending() == 1
    ent.refresh_from_db()
    assert ent.status == "entitled"
    assert ent.status_changed_at == T0
    assert ent.date_last_modified > before
    assert ent.end_date is None
    row = Confirmation.objects.get(receive_id=rid)
    assert (row.state, row.entitlement, row.message) == (
        "applied",
        ent,
        request_to(ent, registry.licensor),
    )
    assert row.decided_at is not None
    event = StatusEvent.objects.get()
    assert (event.entitlement, event.portal, event.from_status, event.to_status) == (
        ent,
        None,
        "created",
        "entitled",
    )
    assert (event.cause, event.cause_pk, event.cause_ref, event.effective_at) == (
        "confirmation",
        row.pk,
        rid,
        T0,
    )


def test_portal_processed_moves_its_url_status_only(registry, order, ent):
    other = order.entitlements.order_by("id")[1]
    body = portal_body(request_to(ent, registry.portal))
    store(registry.portal, body)
    apply_all_pending()
    url = ent.url_statuses.get()
    assert (url.status, url.status_changed_at) == ("processed", T0)
    assert other.url_statuses.get().status == "uninitialized"
    ent.refresh_from_db()
    assert ent.status == "created"
    event = StatusEvent.objects.get()
    assert (event.portal, event.from_status, event.to_status) == (
        registry.portal,
        "uninitialized",
        "processed",
    )


def test_delivered_request_makes_the_base_url_status_initialized(registry, ent):
    message = request_to(ent, registry.portal)
    OutboundMessage.objects.filter(pk=message.pk).update(state=MessageState.DELIVERED)
    ent.url_statuses.update(status="initialized")
    store(registry.portal, portal_body(message))
    apply_all_pending()
    event = StatusEvent.objects.get()
    assert (event.from_status, event.to_status) == ("initialized", "processed")


def test_unknown_and_foreign_references_are_rejected_alike(registry, order, ent):
    # a reference the hub sent to another party (the portal) for this entitlement
    foreign = licensor_body(request_to(ent, registry.portal), receive_id="foreign")
    store(registry.licensor, foreign)
    unknown = licensor_body(request_to(ent, registry.licensor), receive_id="unknown")
    unknown["entitlementReferenceId"] = "not-a-uuid"
    store(registry.licensor, unknown)
    apply_all_pending()
    s1, r1 = outcome("foreign")
    s2, r2 = outcome("unknown")
    assert s1 == s2 == "rejected"
    assert r1.replace(foreign["entitlementReferenceId"], "X") == r2.replace("not-a-uuid", "X")
    assert "Uitgeverij Noord" in r1 and "Portal Zuid" not in r1
    ent.refresh_from_db()
    assert ent.status == "created"
    assert not StatusEvent.objects.exists()


def test_other_entitlement_or_product_is_rejected_with_an_actionable_reason(registry, order):
    first, second = order.entitlements.order_by("id")[:2]
    body = licensor_body(request_to(first, registry.licensor), receive_id="wrong-ent")
    body["entitlementId"] = str(second.entitlement_id)
    store(registry.licensor, body)
    body = licensor_body(request_to(first, registry.licensor), receive_id="wrong-product")
    body["productId"] = "9789002000010"
    store(registry.licensor, body)
    apply_all_pending()
    state, reason = outcome("wrong-ent")
    assert state == "rejected"
    assert str(first.entitlement_id) in reason and str(second.entitlement_id) in reason
    state, reason = outcome("wrong-product")
    assert state == "rejected" and "9789002000010" in reason and "9789001000011" in reason
    assert set(Entitlement.objects.values_list("status", flat=True)) == {"created"}


def test_a_status_that_does_not_answer_the_proposal_is_rejected(registry, ent):
    cancel = propose(ent, registry.licensor, status="cancelled", end_date=dt.date(2026, 12, 31))
    confirm(registry, ent, "entitled", rid="bad-answer", message=cancel)
    confirm(registry, ent, "cancelled", rid="cancel-for-create")  # to the first request
    apply_all_pending()
    assert outcome("bad-answer")[0] == "rejected"
    assert "does not answer the proposed status cancelled" in outcome("bad-answer")[1]
    assert outcome("cancel-for-create")[0] == "rejected"
    ent.refresh_from_db()
    assert ent.status == "created"


def test_cancel_sets_end_date_from_the_proposal_or_the_processed_day(registry, order):
    first, second = order.entitlements.order_by("id")[:2]
    end = dt.date(2026, 12, 31)
    confirm(
        registry,
        first,
        "cancelled",
        message=propose(first, registry.licensor, status="cancelled", end_date=end),
    )
    late_evening = dt.datetime(2026, 9, 1, 23, 30, tzinfo=dt.UTC)  # 2 Sept in Amsterdam
    confirm(
        registry,
        second,
        "blocked",
        at=late_evening,
        message=propose(second, registry.licensor, status="blocked"),
    )
    apply_all_pending()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.end_date) == ("cancelled", end)
    assert (second.status, second.end_date) == ("blocked", dt.date(2026, 9, 2))


def test_licensed_cannot_be_cancelled_stale(registry, ent):
    confirm(registry, ent, "licensed", rid="lic")
    cancel = propose(ent, registry.licensor, status="cancelled")
    confirm(registry, ent, "cancelled", at=T0 + H, rid="cxl", message=cancel)
    apply_all_pending()
    assert outcome("lic")[0] == "applied"
    state, reason = outcome("cxl")
    assert state == "stale" and "licensed" in reason
    ent.refresh_from_db()
    assert (ent.status, ent.end_date) == ("licensed", None)


def test_same_status_again_is_duplicate(registry, ent):
    confirm(registry, ent, "entitled", rid="a")
    confirm(registry, ent, "entitled", at=T0 + H, rid="b")
    apply_all_pending()
    assert outcome("a")[0] == "applied"
    assert outcome("b")[0] == "duplicate"
    assert StatusEvent.objects.count() == 1


def test_late_older_confirmation_replays_the_history(registry, ent):
    """entitled@t2 arrives and is applied; then licensed@t1 arrives: in processedTimestamp
    order licensed came first and entitled can no longer follow: final licensed."""
    confirm(registry, ent, "entitled", at=T0 + 2 * H, rid="t2-entitled")
    apply_all_pending()
    ent.refresh_from_db()
    assert ent.status == "entitled"
    confirm(registry, ent, "licensed", at=T0 + H, rid="t1-licensed")
    apply_all_pending()
    ent.refresh_from_db()
    assert (ent.status, ent.status_changed_at) == ("licensed", T0 + H)
    assert outcome("t1-licensed")[0] == "applied"
    assert outcome("t2-entitled")[0] == "stale"  # re-decided by the replay
    events = list(StatusEvent.objects.order_by("id").values_list("from_status", "to_status"))
    assert events == [("created", "entitled"), ("entitled", "licensed")]


def test_late_older_same_status_moves_status_changed_at_without_an_event(registry, ent):
    confirm(registry, ent, "entitled", at=T0 + 2 * H, rid="late")
    apply_all_pending()
    confirm(registry, ent, "entitled", at=T0, rid="early")
    apply_all_pending()
    ent.refresh_from_db()
    assert ent.status_changed_at == T0
    assert outcome("early")[0] == "applied" and outcome("late")[0] == "duplicate"
    assert StatusEvent.objects.count() == 1


def test_activation_licenses_and_binds_an_activation_code(registry):
    order = make_order(registry, 2, delivery_type=DeliveryType.SCHOOL_ACTIVATIONCODES)
    code_ent = order.entitlements.order_by("id").first()
    user = {
        "userMasterIdentifier": "https://ketenid.nl/201703/abc",
        "userIds": [{"userId": "u-1", "userIdType": "eduID"}],
    }
    body = activation_body(code_ent, user=user, ref="act-1")
    store(registry.licensor, body)
    # a second activation of the same code by someone else later does not rebind it
    store(registry.licensor, activation_body(code_ent, at=T0 + H, ref="act-2"))
    apply_all_pending()
    code_ent.refresh_from_db()
    assert code_ent.status == "licensed"
    assert code_ent.user_master_identifier == user["userMasterIdentifier"]
    assert code_ent.user_ids == user["userIds"]
    assert code_ent.specification["user"] == user
    assert code_ent.specification["activationCode"] == code_ent.activation_code
    assert outcome("act-1")[0] == "applied" and outcome("act-2")[0] == "duplicate"
    event = StatusEvent.objects.get()
    assert (event.cause, event.cause_ref, event.to_status) == ("activation", "act-1", "licensed")


def test_activation_checks_licensor_product_type_school_and_user(registry, order, ent):
    other_order = make_order(registry, 1, product=registry.other_product)
    cases = {
        "not-mine": activation_body(other_order.entitlements.get()),
        "bad-product": {**activation_body(ent), "productId": "9789002000010"},
        "bad-type": {**activation_body(ent), "entitlementType": "school-employee"},
        "bad-school": {
            **activation_body(ent),
            "school": {"organisationMasterIdentifier": "220B244"},
        },
        "bad-user": activation_body(ent, user={"userMasterIdentifier": "https://x/other"}),
        "unknown": {**activation_body(ent), "entitlementId": "nope"},
    }
    for ref, body in cases.items():
        store(registry.licensor, {**body, "initialActivationReferenceId": ref})
    apply_all_pending()
    for ref in cases:
        state, reason = outcome(ref)
        assert state == "rejected", (ref, reason)
    assert "Uitgeverij Noord" in outcome("not-mine")[1]
    assert outcome("not-mine")[1].replace(
        str(other_order.entitlements.get().entitlement_id), "X"
    ) == outcome("unknown")[1].replace("nope", "X")
    assert set(Entitlement.objects.values_list("status", flat=True)) == {"created"}


def test_after_expiry_confirmations_are_stale(registry):
    order = make_order(registry, 1)
    order.expiration_date = dt.date(2026, 9, 30)
    order.start_date = dt.date(2026, 8, 1)
    order.save()
    ent = order.entitlements.get()
    confirm(registry, ent, "entitled", at=dt.datetime(2026, 9, 15, tzinfo=dt.UTC), rid="before")
    confirm(registry, ent, "licensed", at=dt.datetime(2026, 10, 2, tzinfo=dt.UTC), rid="after")
    store(registry.portal, portal_body(request_to(ent, registry.portal), receive_id="url"))
    apply_all_pending()
    ent.refresh_from_db()
    assert ent.status == "expired"
    assert ent.url_statuses.get().status == "expired"
    assert outcome("before")[0] == "applied"
    assert outcome("after")[0] == "stale"
    assert outcome("url")[0] == "applied"  # processed on 1 Sept, then expired
    expiry = StatusEvent.objects.filter(cause="expiry", portal=None).get()
    assert (expiry.from_status, expiry.to_status) == ("created", "expired")


def test_batches_use_a_constant_number_of_queries(registry):
    def run(n):
        order = make_order(registry, n)
        for e in order.entitlements.all():
            confirm(registry, e, "entitled")
            store(registry.portal, portal_body(request_to(e, registry.portal)))
        bad = licensor_body(request_to(order.entitlements.first(), registry.licensor))
        bad["productId"] = "nope"
        store(registry.licensor, bad)
        with CaptureQueriesContext(connection) as queries:
            result = apply_pending_batch(batch_size=10_000)
        assert result.claimed == 2 * n + 1 and result.rejected == 1
        assert apply_pending_batch().claimed == 0
        return [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]

    small, large = run(2), run(40)
    assert len(small) == len(large) <= 10, large
    assert Entitlement.objects.filter(status="entitled").count() == 42


def test_workers_claim_disjoint_batches(registry, order):
    for e in order.entitlements.all():
        confirm(registry, e, "entitled")
    first = apply_pending_batch(batch_size=2)
    second = apply_pending_batch(batch_size=2)
    assert (first.claimed, second.claimed) == (2, 1)
    assert not Confirmation.objects.filter(state="pending").exists()


def test_replay_that_undoes_a_cancellation_clears_its_end_date(registry, ent):
    cancel = propose(ent, registry.licensor, status="cancelled", end_date=dt.date(2027, 1, 31))
    confirm(registry, ent, "cancelled", at=T0 + H, rid="cxl", message=cancel)
    apply_all_pending()
    ent.refresh_from_db()
    assert (ent.status, ent.end_date) == ("cancelled", dt.date(2027, 1, 31))
    confirm(registry, ent, "licensed", at=T0, rid="lic-earlier")  # activated before the cancel
    apply_all_pending()
    ent.refresh_from_db()
    assert (ent.status, ent.end_date) == ("licensed", None)
    assert outcome("cxl")[0] == "stale"


def test_replay_that_makes_an_activation_stale_unbinds_the_code(registry):
    order = make_order(registry, 1, delivery_type=DeliveryType.SCHOOL_ACTIVATIONCODES)
    code = order.entitlements.get()
    store(registry.licensor, activation_body(code, at=T0 + H, ref="act"))
    apply_all_pending()
    code.refresh_from_db()
    assert code.status == "licensed" and code.user_master_identifier
    cancel = propose(code, registry.licensor, status="cancelled")
    confirm(registry, code, "cancelled", at=T0, rid="cxl-earlier", message=cancel)
    apply_all_pending()
    code.refresh_from_db()
    assert (code.status, code.user_master_identifier, code.user_ids) == ("cancelled", None, None)
    assert "user" not in code.specification
    assert outcome("act")[0] == "stale"


def test_overdue_pending_is_what_the_sweep_looks_for(registry, ent):
    from confirmations.selectors.pending import has_overdue_pending

    assert not has_overdue_pending(0)
    confirm(registry, ent, "entitled")
    assert has_overdue_pending(0)
    assert not has_overdue_pending(3600)  # just received: the wake-up is still on its way
    apply_all_pending()
    assert not has_overdue_pending(0)


def test_a_confirmation_that_cannot_be_applied_is_set_aside_not_blocking(
    registry, order, monkeypatch
):
    """A confirmation whose application raises (a bug, unexpected data) is set aside as
    rejected with a reason naming it; every other confirmation of the batch is applied."""
    from confirmations.services import replay_batch as replay_module

    first, poison, third = order.entitlements.order_by("id")
    rids = [confirm(registry, e, "entitled") for e in (first, poison, third)]
    real_fold = replay_module.fold

    def fold_that_breaks_on_the_poison(base_urls, events, tz):
        if any(event.ref == rids[1] for event in events):
            raise KeyError("unexpected data")
        return real_fold(base_urls, events, tz)

    monkeypatch.setattr(replay_module, "fold", fold_that_breaks_on_the_poison)
    assert apply_all_pending() == 3
    assert outcome(rids[0])[0] == "applied"
    assert outcome(rids[2])[0] == "applied"
    state, reason = outcome(rids[1])
    poison_pk = Confirmation.objects.get(receive_id=rids[1]).pk
    assert state == "rejected"
    assert "internal error" in reason and str(poison_pk) in reason
    statuses = dict(Entitlement.objects.values_list("pk", "status"))
    assert (statuses[first.pk], statuses[poison.pk], statuses[third.pk]) == (
        "entitled",
        "created",
        "entitled",
    )


def test_a_lost_database_connection_sets_nothing_aside(registry, ent, monkeypatch):
    from django.db import OperationalError

    from confirmations.services import replay_batch as replay_module

    rid = confirm(registry, ent, "entitled")

    def connection_lost(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(replay_module, "fold", connection_lost)
    with pytest.raises(OperationalError):
        apply_all_pending()
    assert outcome(rid)[0] == "pending"


def test_a_backlog_larger_than_a_batch_asks_for_one_more_worker_once(registry, order):
    for e in order.entitlements.all():
        confirm(registry, e, "entitled")
    calls = []
    assert apply_all_pending(batch_size=1, on_more=lambda: calls.append(1)) == 3
    assert calls == [1]
    for e in order.entitlements.all():
        confirm(registry, e, "licensed", at=T0 + H)
    assert apply_all_pending(batch_size=10, on_more=lambda: calls.append(2)) == 3
    assert calls == [1]  # one batch held it all: nobody else is woken


def test_a_confirmation_committed_before_the_release_is_taken_by_the_last_claim(registry, order):
    """The wake-up protocol: the working task clears the key, then claims once more, so a
    confirmation that arrived while the key was held (and so woke nobody) is still applied."""
    first, second, _ = order.entitlements.order_by("id")
    confirm(registry, first, "entitled")
    events = []

    def release():
        events.append("release")
        if events.count("release") == 1:
            events.append("late")
            confirm(registry, second, "entitled", rid="late")

    total = apply_all_pending(on_batch=lambda: events.append("batch"), before_last_claim=release)
    assert total == 2
    assert outcome("late")[0] == "applied"
    # batch, (empty claim) release + late, batch (the late one), (empty) release, (empty) stop
    assert events == ["batch", "release", "late", "batch", "release"]


def test_a_batch_that_was_not_full_waits_before_the_next_claim(registry, order, monkeypatch):
    from confirmations.services import apply as apply_module

    for e in order.entitlements.all():
        confirm(registry, e, "entitled")
    sleeps = []
    monkeypatch.setattr(apply_module.time, "sleep", sleeps.append)
    # a full batch of two, one not full (then the wait), the empty claim: one wait
    assert apply_all_pending(batch_size=2, gather_seconds=0.25) == 3
    assert sleeps == [0.25]


def test_the_task_holds_the_wake_key_while_working_and_clears_it_before_stopping(
    registry, ent, monkeypatch
):
    import redis
    from django.conf import settings

    from confirmations import tasks
    from confirmations.services.wake import WAKE_KEY

    r = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    r.delete(WAKE_KEY)
    seen = []
    real_hold = tasks.hold_wake

    def hold():
        real_hold()
        seen.append(bool(r.exists(WAKE_KEY)))

    monkeypatch.setattr(tasks, "hold_wake", hold)
    confirm(registry, ent, "entitled")
    assert tasks.apply_pending() == 1
    assert seen == [True, True]  # at the start and after the batch: requests enqueue nothing
    assert not r.exists(WAKE_KEY)  # stopped: the next commit wakes a worker again


def test_the_portable_statements_give_the_same_result(registry, monkeypatch):
    """SQLite (the embedded default) takes executemany and plain IN lists instead of the
    PostgreSQL statements; run that path here and check it writes the same."""
    order = make_order(registry, 2, delivery_type=DeliveryType.SCHOOL_ACTIVATIONCODES)
    first, code = order.entitlements.order_by("id")
    rid = confirm(registry, first, "entitled")
    store(registry.portal, portal_body(request_to(first, registry.portal), receive_id="url"))
    user = {"userMasterIdentifier": "https://ketenid.nl/201703/abc", "userIds": []}
    store(registry.licensor, activation_body(code, user=user, ref="act"))
    monkeypatch.setattr(connection, "vendor", "portable")
    assert apply_all_pending() == 3
    monkeypatch.undo()
    first.refresh_from_db()
    code.refresh_from_db()
    assert (first.status, first.status_changed_at) == ("entitled", T0)
    assert first.url_statuses.get().status == "processed"
    assert (code.status, code.user_master_identifier, code.specification["user"]) == (
        "licensed",
        user["userMasterIdentifier"],
        user,
    )
    row = Confirmation.objects.get(receive_id=rid)
    assert (row.state, row.entitlement, row.message) == (
        "applied",
        first,
        request_to(first, registry.licensor),
    )
    assert row.decided_at is not None
    assert sorted(StatusEvent.objects.values_list("to_status", "cause_ref")) == [
        ("entitled", rid),
        ("licensed", "act"),
        ("processed", "url"),
    ]
    assert all(e.recorded_at is not None for e in StatusEvent.objects.all())
