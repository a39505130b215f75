"""Students by enrollmentId (seed 004): the enrollment client against a real HTTP server on
loopback, intake holding their requests, and the resolver releasing or failing them."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.admin.sites import AdminSite
from django.contrib.messages.storage.fallback import FallbackStorage
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aanspraak.models import SchoolOrganisationId
from aanspraak.outbound.enrollments import (
    administration_endpoint,
    get_enrollment,
    parse_enrollment,
)
from aanspraak.outbound.fetch import ChainCallError, MalformedBody
from entitlements.admin import EntitlementAdmin
from entitlements.intake import receive_delivery_order
from entitlements.models import (
    DeliveryOrderIntake,
    EnrollmentLookup,
    Entitlement,
    OutboundMessage,
    StatusEvent,
)
from entitlements.services import enrollment as service
from entitlements.services.cancel import propose_end
from tests.support.chain_helpers import enrollment, order_by_enrollments
from tests.support.loopback import Answer, LoopbackParty, point_party_at


@pytest.fixture
def admin_server(registry):
    """The school's administration system on loopback, answering from ``table`` (tests can
    replace ``answer``), with an OAuth2 token endpoint the hub must use."""
    table: dict[str, dict] = {}

    def answer(received):
        enrollment_id = urlsplit(received.path).path.rsplit("/", 1)[-1]
        if enrollment_id in table:
            return Answer(200, table[enrollment_id])
        return Answer(404, {"status": 404, "statusMessage": "no such enrollment"})

    server = LoopbackParty(answer).start()
    server.require_token = True
    server.table = table
    party = registry.school_admin
    point_party_at(party, server, client=("hub-at-sis", "sis-secret"))
    yield server
    server.stop()


def _get(registry, enrollment_id="E-1", params=None):
    return get_enrollment(
        administration_endpoint(registry.school_admin),
        enrollment_id,
        params or {"orgMasterId": "110A133"},
    )


# --- The client -------------------------------------------------------------------------------


def test_client_fetches_and_validates_with_a_scoped_token(registry, admin_server):
    admin_server.table["E-1"] = enrollment("E-1", status="active")
    found = _get(registry)
    assert found.enrollment_id == "E-1"
    assert found.student == {"userMasterIdentifier": "https://ketenid.nl/201703/e-1"}
    assert found.begin_date == dt.date(2026, 7, 1) and found.end_date is None
    request = admin_server.received[-1]
    assert request.method == "GET"
    assert urlsplit(request.path).path == "/enrollments/school/E-1"
    assert parse_qs(urlsplit(request.path).query) == {"orgMasterId": ["110A133"]}
    token_request = admin_server.token_requests[0].body["_form"]
    assert "scope=eduv.association" in token_request
    assert LoopbackParty.basic_credentials(admin_server.token_requests[0]) == (
        "hub-at-sis",
        "sis-secret",
    )


def test_school_without_master_id_is_named_by_org_id_and_type(registry, admin_server):
    school = registry.other_school
    school.organisation_master_identifier = None
    school.administration = registry.school_admin
    school.save()
    SchoolOrganisationId.objects.filter(school=school).delete()
    SchoolOrganisationId.objects.create(
        school=school, organisation_id="22BB", organisation_id_type="BP_ID"
    )
    params = service.school_params(school)
    assert params == {"orgId": "22BB", "orgIdType": "BP_ID"}
    admin_server.table["E-9"] = enrollment("E-9")
    assert _get(registry, "E-9", params).enrollment_id == "E-9"
    query = parse_qs(urlsplit(admin_server.received[-1].path).query)
    assert query == {"orgId": ["22BB"], "orgIdType": ["BP_ID"]}


def test_defective_status_enum_is_tolerated_and_tobedeleted_is_inactive():
    for status in ("active", "study", "whatever"):
        parsed = parse_enrollment(enrollment("E-1", status=status))
        assert parsed.inactive_reason(dt.date(2026, 8, 1), dt.date(2026, 10, 1)) is None
    gone = parse_enrollment(enrollment("E-1", status="tobedeleted"))
    assert "tobedeleted" in gone.inactive_reason(dt.date(2026, 8, 1), dt.date(2026, 10, 1))


@pytest.mark.parametrize(
    "begin, end, active",
    [
        ("2026-08-01", None, True),
        ("2026-07-01", "2026-08-02", True),  # ends the day after startDate
        ("2026-07-01", "2026-08-01", False),  # endDate exclusive: over on startDate
        ("2026-09-15", None, True),  # F5: enrolls mid-period, before activationUntilDate
        ("2026-09-30", "2026-12-01", True),  # the last day of the window
        ("2026-10-01", None, False),  # activationUntilDate is exclusive
        ("2026-11-01", None, False),
    ],
)
def test_activity_window_is_an_overlap_end_dates_exclusive(begin, end, active):
    start, until = dt.date(2026, 8, 1), dt.date(2026, 10, 1)
    reason = parse_enrollment(enrollment("E", begin=begin, end=end)).inactive_reason(start, until)
    assert (reason is None) == active, reason


def test_one_day_window_takes_that_day():
    day = dt.date(2026, 8, 1)
    assert parse_enrollment(enrollment("E", begin="2026-08-01")).inactive_reason(day, day) is None
    assert "begins" in parse_enrollment(enrollment("E", begin="2026-08-02")).inactive_reason(
        day, day
    )


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda e: e.pop("student"), "enrollment.student is required"),
        (lambda e: e.update(student={}), "enrollment.student needs userMasterIdentifier"),
        (
            lambda e: e.update(student={"userIds": [{"userId": "1", "userIdType": "BSN"}]}),
            "enrollment.student.userIds[0].userIdType must be one of",
        ),
        (lambda e: e.update(enrollmentType="class"), "enrollment.enrollmentType must be one of"),
        (lambda e: e.update(beginDate="1-8-2026"), "enrollment.beginDate must be a date"),
        (lambda e: e.update(endDate="2026-01-01"), "enrollment.endDate 2026-01-01 is before"),
        (lambda e: e.update(enrollmentId="E-2"), "enrollment.enrollmentId is E-2, asked for E-1"),
        (lambda e: e.pop("status"), "enrollment.status is required"),
    ],
)
def test_malformed_enrollments_name_the_field(mutate, message):
    body = enrollment("E-1")
    mutate(body)
    with pytest.raises(MalformedBody, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_enrollment(body, "E-1")


@pytest.mark.parametrize(
    "answer, kind, transient",
    [
        (Answer(403, {"status": 403, "statusMessage": "scope"}), "forbidden", False),
        (Answer(404, {"status": 404, "statusMessage": "gone"}), "not-found", False),
        (Answer(400, {"status": 11, "statusMessage": "bad"}), "bad-request", False),
        (Answer(500, {"status": 99, "statusMessage": "oops"}), "unavailable", True),
        (Answer(503, {}, {"Retry-After": "7"}), "unavailable", True),
    ],
)
def test_error_statuses_map_to_clear_errors(registry, admin_server, answer, kind, transient):
    admin_server.answer = lambda r: answer
    with pytest.raises(ChainCallError) as caught:
        _get(registry)
    error = caught.value
    assert (error.kind, error.transient, error.http_status) == (kind, transient, answer.status)
    assert f"HTTP {answer.status}" in error.message and "enrollment E-1" in error.message
    if answer.headers:
        assert error.retry_after == 7.0


def test_401_drops_the_token_and_is_transient(registry, admin_server):
    admin_server.table["E-1"] = enrollment("E-1")
    _get(registry)
    admin_server.tokens.clear()  # the administration system rotated its keys
    with pytest.raises(ChainCallError) as caught:
        _get(registry)
    assert (caught.value.kind, caught.value.transient) == ("unauthorized", True)
    assert _get(registry).enrollment_id == "E-1"  # a new token was fetched
    assert len(admin_server.token_requests) == 2


def test_401_without_a_token_url_is_permanent(registry, admin_server):
    party = registry.school_admin
    party.endpoint_token_url = ""
    party.save()
    with pytest.raises(ChainCallError) as caught:
        _get(registry)
    assert (caught.value.kind, caught.value.transient) == ("unauthorized", False)


def test_body_that_is_not_json_is_malformed(registry, admin_server):
    admin_server.answer = lambda r: Answer(200, raw=b"<html>maintenance</html>")
    with pytest.raises(ChainCallError, match="not JSON") as caught:
        _get(registry)
    assert (caught.value.kind, caught.value.transient, caught.value.http_status) == (
        "malformed",
        False,
        200,
    )
    admin_server.answer = lambda r: Answer(200, ["not", "an", "object"])
    with pytest.raises(ChainCallError, match="enrollment must be an object") as caught:
        _get(registry)
    assert caught.value.kind == "malformed"


def test_timeout_is_transient(registry, admin_server, settings):
    settings.HUB_OUTBOUND_TIMEOUT = 0.3
    admin_server.table["E-1"] = enrollment("E-1")
    admin_server.answer = lambda r: Answer(200, enrollment("E-1"), delay=1.0)
    with pytest.raises(ChainCallError) as caught:
        _get(registry)
    assert (caught.value.kind, caught.value.transient, caught.value.http_status) == (
        "unavailable",
        True,
        None,
    )
    assert "timeout" in caught.value.message


def test_no_endpoint_is_permanent(registry):
    with pytest.raises(ChainCallError) as caught:
        _get(registry)
    assert (caught.value.kind, caught.value.transient) == ("no-endpoint", False)


# --- Intake and the resolver -----------------------------------------------------------------


def _intake(registry, enrollment_ids, **extra):
    return receive_delivery_order(registry.seller, order_by_enrollments(enrollment_ids, **extra))


def test_intake_holds_the_requests_of_students_by_enrollment(
    registry, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        result = _intake(
            registry,
            ["E-1", "E-2"],
            students=[{"userMasterIdentifier": "https://ketenid.nl/201703/direct"}],
        )
    assert result.total_quantity == 3
    by_enrollment = Entitlement.objects.filter(enrollment_id__isnull=False)
    assert by_enrollment.count() == 2
    for e in by_enrollment:
        assert e.user_master_identifier is None and e.user_ids is None
        assert e.specification == {"school": {"organisationMasterIdentifier": "110A133"}}
        assert e.status == "created"
        assert e.url_statuses.get().status == "uninitialized"
        assert not e.messages.exists()
        assert e.enrollment_lookup.state == "pending"
    direct = Entitlement.objects.get(enrollment_id__isnull=True)
    assert direct.messages.count() == 2  # licensor and portal, as before
    assert len(callbacks) >= 2  # dispatch wake-up and the resolver's


def test_intake_refuses_enrollments_without_an_administration_system(registry):
    registry.school.administration = None
    registry.school.save()
    from entitlements.intake import IntakeError

    with pytest.raises(IntakeError, match="administration system"):
        _intake(registry, ["E-1"])
    assert not Entitlement.objects.exists()


def test_intake_refuses_enrollment_ids_for_employees(registry):
    from entitlements.intake import IntakeError

    body = order_by_enrollments([])
    body["deliveryOrder"]["deliveryType"] = "school-employees"
    body["deliveryOrder"]["deliverySpecification"] = {"employees": [{"enrollmentId": "E-1"}]}
    with pytest.raises(IntakeError, match="only school-students may use it"):
        receive_delivery_order(registry.seller, body)


def test_resolver_sets_the_user_and_releases_the_requests(registry, admin_server):
    admin_server.table["E-1"] = enrollment("E-1")
    admin_server.table["E-2"] = enrollment(
        "E-2", student={"userIds": [{"userId": "123", "userIdType": "BPI"}]}
    )
    _intake(registry, ["E-1", "E-2"])
    report = service.resolve_due()
    assert (report.resolved, report.retry, report.failed) == (2, 0, 0)
    one = Entitlement.objects.get(enrollment_id="E-1")
    assert one.user_master_identifier == "https://ketenid.nl/201703/e-1"
    assert one.specification["user"] == {"userMasterIdentifier": one.user_master_identifier}
    two = Entitlement.objects.get(enrollment_id="E-2")
    assert two.user_ids == [{"userId": "123", "userIdType": "BPI"}]
    assert two.specification["user"] == {"userIds": two.user_ids}
    for e in (one, two):
        lookup = e.enrollment_lookup
        assert lookup.state == "resolved" and lookup.resolved_at and lookup.enrollment
        kinds = sorted(
            (m.recipient_id, m.proposed_entitlement_status, m.proposed_url_status)
            for m in e.messages.all()
        )
        assert kinds == sorted(
            [(registry.licensor.pk, "created", None), (registry.portal.pk, None, "initialized")]
        )
    # Nothing left to do; a second run sends nothing again.
    assert service.resolve_due().resolved == 0
    assert OutboundMessage.objects.filter(kind="entitlement-request").count() == 4


def test_resolver_queries_do_not_grow_with_the_batch(registry, admin_server):
    def run(ids):
        for i in ids:
            admin_server.table[i] = enrollment(i)
        _intake(registry, ids, order_id=f"DO-{ids[0]}")
        with CaptureQueriesContext(connection) as ctx:
            assert service.resolve_due().resolved == len(ids)
        return len(ctx.captured_queries)

    assert run(["A-1", "A-2"]) == run([f"B-{i}" for i in range(12)])


def test_enrollment_that_ended_before_the_start_fails_and_nothing_is_sent(registry, admin_server):
    admin_server.table["E-1"] = enrollment("E-1", begin="2025-08-01", end="2026-07-01")
    _intake(registry, ["E-1"])
    assert service.resolve_due().failed == 1
    e = Entitlement.objects.get()
    lookup = e.enrollment_lookup
    assert lookup.state == "failed" and lookup.error_kind == "inactive"
    assert "ended 2026-07-01" in lookup.last_error
    assert e.status == "created" and e.user_master_identifier is None
    assert not e.messages.exists()


def test_unknown_enrollment_fails_permanently(registry, admin_server):
    _intake(registry, ["E-404"])
    assert service.resolve_due().failed == 1
    lookup = EnrollmentLookup.objects.get()
    assert (lookup.state, lookup.error_kind, lookup.http_status) == ("failed", "not-found", 404)
    assert "no such enrollment" in lookup.last_error


def test_server_error_is_retried_with_backoff_then_resolves(registry, admin_server, settings):
    settings.HUB_RETRY_BASE_SECONDS = 60
    admin_server.answer = lambda r: Answer(500, {"status": 99, "statusMessage": "down"})
    _intake(registry, ["E-1"])
    assert service.resolve_due().retry == 1
    lookup = EnrollmentLookup.objects.get()
    assert lookup.state == "pending" and lookup.attempt_count == 1
    assert lookup.next_attempt_at > timezone.now()
    assert lookup.error_kind == "unavailable" and "HTTP 500" in lookup.last_error
    assert service.resolve_due().batches == 0  # not due yet
    # Due again, and the administration system is back.
    EnrollmentLookup.objects.update(next_attempt_at=timezone.now())
    admin_server.answer = lambda r: Answer(200, enrollment("E-1"))
    assert service.resolve_due().resolved == 1
    assert Entitlement.objects.get().messages.count() == 2


def test_a_run_tries_each_lookup_once_however_short_the_backoff(registry, admin_server, settings):
    settings.HUB_RETRY_BASE_SECONDS = 0
    settings.HUB_ENROLLMENT_BATCH_SIZE = 1
    admin_server.answer = lambda r: Answer(503)
    _intake(registry, ["E-1", "E-2"])
    report = service.resolve_due(time_budget=30)
    assert (report.retry, report.batches) == (2, 2)
    assert set(EnrollmentLookup.objects.values_list("attempt_count", flat=True)) == {1}
    assert service.resolve_due(time_budget=30).retry == 2


def test_gives_up_after_the_horizon(registry, admin_server, settings):
    settings.HUB_RETRY_HORIZON_SECONDS = 0
    admin_server.answer = lambda r: Answer(503, {})
    _intake(registry, ["E-1"])
    assert service.resolve_due().failed == 1
    lookup = EnrollmentLookup.objects.get()
    assert lookup.state == "failed" and "gave up after 1 attempts" in lookup.last_error


def test_cancelled_order_is_not_released_and_not_proposed_cancelled(registry, admin_server):
    admin_server.table["E-1"] = enrollment("E-1")
    _intake(registry, ["E-1"])
    proposal = propose_end(Entitlement.objects.all(), "cancelled", dt.date(2026, 9, 1), "admin")
    assert proposal.proposed == 0  # never sent to anyone: nothing to cancel at the parties
    order = Entitlement.objects.get().delivery_order
    order.status, order.end_date = "cancelled", dt.date(2026, 9, 1)
    order.save()
    assert service.resolve_due().failed == 1
    assert EnrollmentLookup.objects.get().error_kind == "cancelled"
    assert not OutboundMessage.objects.filter(kind="entitlement-request").exists()


def test_student_enrolling_mid_period_is_released(registry, admin_server):
    """F5: the order runs 2026-08-01 .. 2026-10-01; a student enrolled from 2026-09-01 gets
    the entitlement."""
    admin_server.table["E-1"] = enrollment("E-1", begin="2026-09-01")
    _intake(registry, ["E-1"])
    assert service.resolve_due().resolved == 1
    assert Entitlement.objects.get().messages.count() == 2


def _cancel(registry, order_id="DO-E"):
    from tests.entitlements.test_intake import cancel_body

    return receive_delivery_order(registry.seller, cancel_body(order_id, "2026-09-01"))


def test_cancel_ends_unresolved_students_itself_with_events(registry, admin_server):
    """F2: students still pending or failed when their order is cancelled were sent to no
    one; the hub cancels them itself (with StatusEvents) and never releases them."""
    admin_server.table["E-OK"] = enrollment("E-OK")
    _intake(registry, ["E-OK", "E-404"])
    assert service.resolve_due().resolved == 1  # E-404 failed
    check = service.check_enrollments(Entitlement.objects.filter(enrollment_id="E-404"))
    assert check.queued == 1  # pending again
    result = _cancel(registry)
    assert result.cancelled_quantity == 2  # one proposed, one cancelled by the hub
    unresolved = Entitlement.objects.get(enrollment_id="E-404")
    assert (unresolved.status, str(unresolved.end_date)) == ("cancelled", "2026-09-01")
    assert unresolved.url_statuses.get().status == "cancelled"
    lookup = unresolved.enrollment_lookup
    assert (lookup.state, lookup.error_kind, lookup.next_attempt_at) == (
        "failed",
        "cancelled",
        None,
    )
    intake = DeliveryOrderIntake.objects.get(action="cancel")
    events = {
        (e.portal_id, e.from_status, e.to_status, e.cause, e.cause_pk, e.cause_ref)
        for e in StatusEvent.objects.filter(entitlement=unresolved)
    }
    assert events == set(
        [
            (None, "created", "cancelled", "intake", intake.pk, intake.reference_id),
            (
                registry.portal.pk,
                "uninitialized",
                "cancelled",
                "intake",
                intake.pk,
                intake.reference_id,
            ),
        ]
    )
    assert not unresolved.messages.exists()
    # The resolved one is proposed cancelled to the parties as usual.
    released = Entitlement.objects.get(enrollment_id="E-OK")
    assert released.status == "created"
    assert released.messages.filter(proposed_entitlement_status="cancelled").count() == 1
    # Nothing is looked up or released any more.
    admin_server.table["E-404"] = enrollment("E-404")
    EnrollmentLookup.objects.update(next_attempt_at=timezone.now())
    assert service.resolve_due().batches == 0
    assert not unresolved.messages.exists()


def test_cancel_of_an_order_with_a_failed_lookup_counts_it(registry, admin_server):
    _intake(registry, ["E-404"])
    assert service.resolve_due().failed == 1
    body = _cancel(registry).as_body()
    assert body["cancelledQuantity"] == 1
    confirmation = OutboundMessage.objects.filter(kind="deliveryorder-confirmation").latest("id")
    assert confirmation.body["newStatus"] == "cancelled"
    assert "1 never sent cancelled by the hub" in confirmation.body["statusMessage"]
    assert Entitlement.objects.get().status == "cancelled"


def _in_thread_db(work):
    """Run ``work`` with this thread's own connection (committed data), then close it."""
    from django.db import connections

    try:
        return work()
    finally:
        connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_cancel_landing_during_the_lookup_is_not_released(registry, admin_server):
    """F2: the cancel commits while the administration system answers; the resolver must
    not send the student out afterwards (there would be no cancel proposal to follow)."""
    _intake(registry, ["E-1"])

    def answer(received):
        _in_thread_db(lambda: _cancel(registry))
        return Answer(200, enrollment("E-1"))

    admin_server.answer = answer
    report = service.resolve_due()
    assert report.resolved == 0
    assert not OutboundMessage.objects.filter(kind="entitlement-request").exists()
    e = Entitlement.objects.get()
    assert e.status == "cancelled" and e.user_master_identifier is None
    assert e.enrollment_lookup.error_kind == "cancelled"


@pytest.mark.django_db(transaction=True)
def test_worker_that_lost_its_lease_does_not_release_again(registry, admin_server):
    """F3: worker A's lease runs out during its call; worker B claims and releases the
    student; A's late result is not written and creates no second set of requests."""
    _intake(registry, ["E-1"])
    calls = []

    def answer(received):
        calls.append(received.path)
        if len(calls) == 1:  # worker A is waiting on this answer: B takes over

            def worker_b():
                EnrollmentLookup.objects.update(next_attempt_at=timezone.now())
                return service.resolve_due()

            assert _in_thread_db(worker_b).resolved == 1
        return Answer(200, enrollment("E-1"))

    admin_server.answer = answer
    report = service.resolve_due()
    assert (report.resolved, report.stale) == (0, 1)
    assert len(calls) == 2
    assert OutboundMessage.objects.filter(kind="entitlement-request").count() == 2
    lookup = EnrollmentLookup.objects.get()
    assert (lookup.state, lookup.attempt_count) == ("resolved", 1)


def test_admin_check_enrollment_looks_up_again(registry, admin_server, admin_user):
    _intake(registry, ["E-1"], students=[{"userMasterIdentifier": "https://ketenid.nl/x"}])
    assert service.resolve_due().failed == 1  # not known yet at the administration system
    admin_server.table["E-1"] = enrollment("E-1")
    request = RequestFactory().post("/")
    request.user = admin_user
    request.session = {}
    request._messages = FallbackStorage(request)
    model_admin = EntitlementAdmin(Entitlement, AdminSite())
    action = dict((a.__name__, a) for a in model_admin.actions)["check_enrollment"]
    action(model_admin, request, Entitlement.objects.all())
    text = [str(m) for m in request._messages]
    assert "1 enrollment(s) queued" in text[0] and "1 not given by enrollmentId" in text[0]
    lookup = EnrollmentLookup.objects.get()
    assert (lookup.state, lookup.attempt_count) == ("pending", 0)
    assert service.resolve_due().resolved == 1
    report = service.check_enrollments(Entitlement.objects.all())
    assert (report.queued, report.already_resolved) == (0, 1)


def test_admin_change_page_shows_the_lookup(registry, admin_server, admin_client):
    _intake(registry, ["E-404"])
    service.resolve_due()
    e = Entitlement.objects.get()
    page = admin_client.get(f"/admin/entitlements/entitlement/{e.pk}/change/")
    assert page.status_code == 200
    assert b"not-found" in page.content and b"no such enrollment" in page.content


def test_simulate_party_reads_an_enrollment_table(tmp_path):
    from django.core.management import CommandError, call_command

    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(CommandError, match="must map enrollmentId to an Enrollment"):
        call_command("simulate_party", "--administration", str(bad))
    with pytest.raises(CommandError, match="--administration"):
        call_command("simulate_party", "--administration", str(tmp_path / "missing.json"))
