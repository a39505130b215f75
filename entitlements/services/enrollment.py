"""Resolving students given as ``{"enrollmentId": ...}`` (seed 004) to the student of the
enrollment, in the workers, never in a web request.

Intake stores such an entitlement with ``enrollment_id`` set, no user, URL statuses
``uninitialized`` and NO Entitlement requests, plus a pending :class:`EnrollmentLookup`.
A worker claims due lookups (``FOR UPDATE SKIP LOCKED`` and a lease, like the outbound
queue), asks the school's administration system for each enrollment, and then:

- the enrollment's [``beginDate``, ``endDate``) overlaps the order's [``startDate``,
  ``activationUntilDate``) (end dates exclusive; status not ``tobedeleted``): the
  entitlement gets the enrollment's ``student`` as its user (``user_master_identifier`` /
  ``user_ids`` and ``specification.user``), its Entitlement requests to the licensor and
  portals are created and dispatch is woken: it is *released*;
- a transient failure (5xx, 429, timeouts, connection errors, 401 with a token): tried again
  with the outbound retry policy (backoff with jitter, Retry-After) until the horizon;
- a permanent failure (404, 403, 400, a malformed body, an inactive enrollment, no
  administration system) or the horizon passed: the lookup is ``failed`` with the error;
  the entitlement stays ``created`` with nothing sent. Support can "check enrollment" again
  from the admin once the cause is fixed;
- the order is cancelled (before or during the lookup): nothing was ever sent about the
  entitlement, so the hub cancels it itself (``services.cancel.cancel_unresolved``), under
  the order's row lock.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from aanspraak.db.bulk import insert_rows
from aanspraak.enqueue import enqueue_quietly
from aanspraak.outbound import RetryPolicy
from aanspraak.outbound.enrollments import (
    Enrollment,
    administration_endpoint,
    get_enrollment,
    school_params,
)
from aanspraak.outbound.fetch import ChainCallError
from aanspraak.workers import Claim, claim_leased, lock_held, run_batches, tuning
from entitlements import outbox
from entitlements.models import (
    DeliveryOrder,
    EnrollmentLookup,
    Entitlement,
    EntitlementUrlStatus,
    OutboundMessage,
)
from entitlements.outbox.messages import MESSAGE_FIELDS, creation_rows
from entitlements.services.cancel import cancel_unresolved
from entitlements.statuses import DeliveryOrderStatus, EntitlementStatus, UrlStatus

log = logging.getLogger(__name__)

State = EnrollmentLookup.State
MAX_ERROR_LENGTH = 2000
LOOKUP_FIELDS = (
    "entitlement_id",
    "state",
    "attempt_count",
    "next_attempt_at",
    "last_error",
    "error_kind",
    "queued_at",
)


def batch_size() -> int:
    return tuning.setting("HUB_ENROLLMENT_BATCH_SIZE", 50)


def lease_seconds() -> float:
    return tuning.lease_seconds(batch_size())


# --- Queueing ---------------------------------------------------------------------------------


def wake_after_commit() -> None:
    """Enqueue a resolver run once the current transaction commits (a broker that is down
    only delays it: the periodic sweep finds the lookups)."""

    def wake() -> None:
        # No publish retry, broker errors logged: a broker that is down must not stall intake.
        enqueue_quietly("entitlements.tasks.resolve_enrollments", [()])

    transaction.on_commit(wake, robust=True)


def queue_lookups(entitlement_pks: list[int], now: dt.datetime) -> int:
    """Pending lookups for new entitlements (intake, inside its transaction)."""
    stamp = now.isoformat()
    count = insert_rows(
        EnrollmentLookup,
        LOOKUP_FIELDS,
        ((pk, State.PENDING, 0, stamp, "", "", stamp) for pk in entitlement_pks),
    )
    wake_after_commit()
    return count


@dataclass
class CheckReport:
    queued: int = 0
    already_resolved: int = 0
    not_by_enrollment: int = 0


def check_enrollments(entitlements: QuerySet[Entitlement]) -> CheckReport:
    """The admin's "check enrollment": queue the selected entitlements' enrollments to be
    looked up again now, with a fresh retry horizon. Resolved ones are left alone (their
    requests have gone out); entitlements not given by enrollmentId are counted."""
    now = timezone.now()
    report = CheckReport()
    with transaction.atomic():
        rows = list(
            entitlements.values_list("pk", "enrollment_id", "enrollment_lookup__state").order_by()
        )
        missing = []
        again = []
        for pk, enrollment_id, state in rows:
            if enrollment_id is None:
                report.not_by_enrollment += 1
            elif state == State.RESOLVED:
                report.already_resolved += 1
            elif state is None:
                missing.append(pk)
            else:
                again.append(pk)
        if missing:
            insert_rows(
                EnrollmentLookup,
                LOOKUP_FIELDS,
                ((pk, State.PENDING, 0, now, "", "", now) for pk in missing),
            )
        if again:
            EnrollmentLookup.objects.filter(entitlement_id__in=again).exclude(
                state=State.RESOLVED
            ).update(state=State.PENDING, next_attempt_at=now, queued_at=now, attempt_count=0)
        report.queued = len(missing) + len(again)
        if report.queued:
            wake_after_commit()
    return report


# --- Resolving --------------------------------------------------------------------------------


def claim_due(limit: int | None = None, due_by: dt.datetime | None = None) -> Claim:
    """Claim up to ``limit`` due lookups for this worker (``aanspraak.workers``: locked rows
    of other workers are skipped; the lease moves ``next_attempt_at`` ahead so a crashed
    worker's claim comes back). ``due_by`` (default now): a run passes its start, so a
    lookup it retried waits for the next run however short its backoff."""
    now = timezone.now()
    due = EnrollmentLookup.objects.filter(
        state=State.PENDING, next_attempt_at__lte=min(now, due_by or now)
    )
    return claim_leased(
        [due.order_by("next_attempt_at", "id")],
        limit or batch_size(),
        now + dt.timedelta(seconds=lease_seconds()),
        "next_attempt_at",
    )


def has_due() -> bool:
    return EnrollmentLookup.objects.filter(
        state=State.PENDING, next_attempt_at__lte=timezone.now()
    ).exists()


@dataclass
class ResolveReport:
    resolved: int = 0
    retry: int = 0
    failed: int = 0
    stale: int = 0  # not written: no longer this worker's (lease lost, resolved, cancelled)
    batches: int = 0
    more: bool = False

    def add(self, other: ResolveReport) -> None:
        self.resolved += other.resolved
        self.retry += other.retry
        self.failed += other.failed
        self.stale += other.stale


def _lookup_one(lookup: EnrollmentLookup, params_of: dict) -> Enrollment | ChainCallError:
    entitlement = lookup.entitlement
    order = entitlement.delivery_order
    school = order.school
    if order.status == DeliveryOrderStatus.CANCELLED:
        return ChainCallError(
            "cancelled", "the delivery order was cancelled before the enrollment was resolved"
        )
    if school.administration is None:
        return ChainCallError(
            "no-administration", f"school {school} has no administration system in the registry"
        )
    params = params_of[school.pk]
    if not params:
        return ChainCallError("no-school-id", f"school {school} has no identifier to send")
    try:
        enrollment = get_enrollment(
            administration_endpoint(school.administration), entitlement.enrollment_id, params
        )
    except ChainCallError as exc:
        return exc
    reason = enrollment.inactive_reason(order.start_date, order.activation_until_date)
    if reason is not None:
        return ChainCallError("inactive", reason)
    return enrollment


def resolve_batch(claim: Claim, policy: RetryPolicy | None = None) -> ResolveReport:
    """Look up the ``claim``ed lookups` concurrently and record the results; releases
    the Entitlement requests of every entitlement whose enrollment resolved.

    The results are written under locks: first the lookups' delivery orders (the lock a
    cancel takes, so a cancel is either wholly before or wholly after), then the lookups.
    A lookup is written only if it is still pending with the lease this worker claimed it
    with (``aanspraak.workers.lock_held``): a worker that outlived its lease never releases
    an entitlement another worker handles. A lookup whose order is cancelled by now is not
    released: it fails with kind ``cancelled`` and the hub cancels its entitlement itself
    (see cancel_unresolved)."""
    policy = policy or RetryPolicy.from_settings()
    lookups = list(
        EnrollmentLookup.objects.filter(id__in=claim.ids, state=State.PENDING)
        .select_related(
            "entitlement__delivery_order__school__administration",
            "entitlement__delivery_order__product",
        )
        .order_by("id")
    )
    report = ResolveReport()
    if not lookups:
        return report
    schools = {lk.entitlement.delivery_order.school for lk in lookups}
    params_of = {school.pk: school_params(school) for school in schools}
    workers = min(tuning.concurrency(), len(lookups))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="enrollment") as pool:
        results = list(pool.map(lambda lk: _lookup_one(lk, params_of), lookups))
    with transaction.atomic():
        now = timezone.now()
        order_status = dict(
            DeliveryOrder.objects.select_for_update()
            .filter(pk__in={lk.entitlement.delivery_order_id for lk in lookups})
            .order_by("pk")
            .values_list("pk", "status")
        )
        held = lock_held(EnrollmentLookup, [lk.pk for lk in lookups], claim.lease)
        mine: list[EnrollmentLookup] = []
        released: list[EnrollmentLookup] = []
        cancelled_orders: set[int] = set()
        for lookup, result in zip(lookups, results, strict=True):
            if lookup.pk not in held.rows:
                report.stale += 1  # resolved, re-claimed or cancelled meanwhile: not ours
                continue
            order_pk = lookup.entitlement.delivery_order_id
            if order_status.get(order_pk) == DeliveryOrderStatus.CANCELLED:
                cancelled_orders.add(order_pk)
                result = ChainCallError(
                    "cancelled", "the delivery order was cancelled before the enrollment resolved"
                )
            _record(lookup, result, policy, now, report)
            mine.append(lookup)
            if lookup.state == State.RESOLVED:
                released.append(lookup)
        EnrollmentLookup.objects.bulk_update(
            mine,
            [
                "state",
                "attempt_count",
                "next_attempt_at",
                "last_error",
                "error_kind",
                "http_status",
                "enrollment",
                "checked_at",
                "resolved_at",
            ],
        )
        if released:
            _release(released, now)
        if cancelled_orders:
            cancel_unresolved(sorted(cancelled_orders), now)
    return report


def _record(
    lookup: EnrollmentLookup,
    result: Enrollment | ChainCallError,
    policy: RetryPolicy,
    now: dt.datetime,
    report: ResolveReport,
) -> None:
    """Set one lookup's new state from its result (in memory; the caller saves)."""
    lookup.attempt_count += 1
    lookup.checked_at = now
    if isinstance(result, Enrollment):
        lookup.state = State.RESOLVED
        lookup.resolved_at = now
        lookup.next_attempt_at = None
        lookup.last_error = ""
        lookup.error_kind = ""
        lookup.http_status = 200
        lookup.enrollment = result.raw
        entitlement = lookup.entitlement
        entitlement.user_master_identifier = result.student.get("userMasterIdentifier")
        entitlement.user_ids = result.student.get("userIds")
        entitlement.specification = {**(entitlement.specification or {}), "user": result.student}
        report.resolved += 1
        return
    lookup.http_status = result.http_status
    lookup.error_kind = result.kind
    lookup.last_error = result.message[:MAX_ERROR_LENGTH]
    when = None
    if result.transient:
        when = policy.next_attempt_at(
            lookup.queued_at, lookup.attempt_count, now, result.retry_after
        )
        if when is None:
            lookup.last_error = (
                f"gave up after {lookup.attempt_count} attempts (retry horizon "
                f"{int(policy.horizon_seconds)}s passed); last: {result.message}"
            )[:MAX_ERROR_LENGTH]
    if when is not None:
        lookup.next_attempt_at = when
        report.retry += 1
        return
    lookup.state = State.FAILED
    lookup.next_attempt_at = None
    report.failed += 1
    log.warning(
        "enrollment of entitlement %s failed: %s",
        lookup.entitlement.entitlement_id,
        lookup.last_error,
    )


def _release(lookups: list[EnrollmentLookup], now: dt.datetime) -> None:
    """Give the resolved entitlements their user and create their Entitlement requests:
    ``created`` to the licensor, ``initialized`` to each portal (as intake does)."""
    entitlements = [lk.entitlement for lk in lookups]
    for e in entitlements:
        e.date_last_modified = now
    Entitlement.objects.bulk_update(
        entitlements,
        ["user_master_identifier", "user_ids", "specification", "date_last_modified"],
    )
    pks = [e.pk for e in entitlements]
    portals_of: dict[int, list[int]] = {}
    for entitlement_pk, portal_pk in (
        EntitlementUrlStatus.objects.filter(entitlement_id__in=pks, status=UrlStatus.UNINITIALIZED)
        .order_by("entitlement_id", "portal_id")
        .values_list("entitlement_id", "portal_id")
    ):
        portals_of.setdefault(entitlement_pk, []).append(portal_pk)
    recipients: set[int] = set()
    rows = creation_rows(
        (
            (e.pk, e.delivery_order.product.licensor_id, portals_of.get(e.pk, ()))
            for e in entitlements
            # Ended meanwhile (e.g. expired): nothing to create at the parties.
            if e.status == EntitlementStatus.CREATED
        ),
        now,
        recipients=recipients,
    )
    insert_rows(OutboundMessage, MESSAGE_FIELDS, rows)
    outbox.wake_after_commit(recipients)


def resolve_due(time_budget: float | None = None) -> ResolveReport:
    """Resolve due lookups batch by batch until none are due or the time budget is spent
    (``more`` then says to run again): ``aanspraak.workers.run_batches``."""
    budget = time_budget if time_budget is not None else tuning.drain_seconds()
    policy = RetryPolicy.from_settings()
    report = ResolveReport()
    started = timezone.now()

    def begin(claim: Claim) -> Callable[[], None]:
        return lambda: report.add(resolve_batch(claim, policy))

    run = run_batches(lambda: claim_due(due_by=started), begin, budget)
    report.batches, report.more = run.batches, run.more
    return report
