"""Cancel and block by the hub: proposals to the licence registry and the portals.

The hub does not change a sent entitlement's status itself: it proposes ``cancelled`` or
``blocked`` with an ``endDate`` (an Entitlement request to the product's licensor and one to
each portal whose URL status is still live), and the status changes when they confirm
(the confirmations worker). A licensed entitlement cannot be cancelled by the hub (the
licence was activated); it can be blocked. Which statuses may still take each end, and
which URL statuses are over, are read from the transition table.

The one exception is ``cancel_unresolved``: students given by enrollmentId whose lookup never
resolved were sent to no one, so when their order is cancelled the hub cancels them itself
(through the one writer of status changes, ``entitlements.status``).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from aanspraak.db.bulk import insert_rows
from entitlements import outbox
from entitlements.models import (
    DeliveryOrderIntake,
    EnrollmentLookup,
    Entitlement,
    EntitlementUrlStatus,
    OutboundMessage,
)
from entitlements.outbox.messages import MESSAGE_FIELDS, request_row
from entitlements.rules.transitions import TERMINAL, Cause, Subject, sources
from entitlements.status import StatusChange, UrlChange, write_changes
from entitlements.statuses import (
    END_DATE_STATUSES,
    DeliveryOrderStatus,
    EntitlementStatus,
    EventCause,
    MessageKind,
    UrlStatus,
)

log = logging.getLogger(__name__)

# Which current statuses may still be proposed each end status: those it may follow.
PROPOSABLE_FROM = {
    status: tuple(sorted(sources(Subject.ENTITLEMENT, status))) for status in END_DATE_STATUSES
}
ENDED_URL_STATUSES = tuple(sorted(TERMINAL[Subject.URL]))
LookupState = EnrollmentLookup.State


@dataclass
class Proposal:
    """What ``propose_end`` did: ``proposed`` entitlements got proposals, ``licensed`` of the
    selection were licensed (not cancellable), ``recipients`` are the parties to wake."""

    proposed: int = 0
    licensed: int = 0
    messages: int = 0
    recipients: set[int] = field(default_factory=set)


def propose_end(
    entitlements: QuerySet[Entitlement],
    status: str,
    end_date: dt.date,
    cause: str,
    requested_by: str = "",
) -> Proposal:
    """Propose ``status`` (cancelled or blocked) with ``end_date`` for every entitlement of
    the queryset that can still take it and has no such proposal yet. Set-based: a constant
    number of queries whatever the size of the selection. Dispatch is woken after commit.
    ``cause`` (an EventCause: intake, admin) goes to the log; the StatusEvents are written
    when the parties confirm. ``requested_by``, the name of the staff user of an admin action,
    is kept on every message proposed, so that the status events of the confirmations that
    answer them lead back to that user (docs/security.md, "Audit")."""
    if status not in PROPOSABLE_FROM:
        raise ValueError(f"can only propose {', '.join(PROPOSABLE_FROM)}, not {status}")
    if end_date is None:
        raise ValueError("cancelled and blocked need an endDate")
    now = timezone.now()
    result = Proposal()
    with transaction.atomic():
        result.licensed = entitlements.filter(status=EntitlementStatus.LICENSED).count()
        eligible = (
            entitlements.filter(status__in=PROPOSABLE_FROM[status])
            .exclude(
                pk__in=OutboundMessage.objects.filter(
                    kind=MessageKind.ENTITLEMENT_REQUEST, proposed_entitlement_status=status
                ).values("entitlement_id")
            )
            # Students whose enrollment is not resolved were never sent to anyone: there is
            # nothing to cancel at the parties (resolution refuses a cancelled order).
            .exclude(enrollment_lookup__state__in=["pending", "failed"])
        )
        rows = list(eligible.values_list("pk", "delivery_order__product__licensor_id"))
        if not rows:
            return result
        pks = [r[0] for r in rows]
        portals_of: dict[int, list[int]] = {}
        for entitlement_pk, portal_pk in (
            EntitlementUrlStatus.objects.filter(entitlement_id__in=pks)
            .exclude(status__in=ENDED_URL_STATUSES)
            .values_list("entitlement_id", "portal_id")
        ):
            portals_of.setdefault(entitlement_pk, []).append(portal_pk)

        def messages():
            for pk, licensor_pk in rows:
                result.recipients.add(licensor_pk)
                yield (
                    *request_row(
                        recipient_id=licensor_pk,
                        entitlement_pk=pk,
                        entitlement_status=status,
                        url_status=None,
                        end_date=end_date,
                        now=now,
                    ),
                    requested_by,
                )
                for portal_pk in portals_of.get(pk, ()):
                    result.recipients.add(portal_pk)
                    yield (
                        *request_row(
                            recipient_id=portal_pk,
                            entitlement_pk=pk,
                            entitlement_status=None,
                            url_status=status,
                            end_date=end_date,
                            now=now,
                        ),
                        requested_by,
                    )

        fields = (*MESSAGE_FIELDS, "requested_by")
        result.messages = insert_rows(OutboundMessage, fields, messages())
        result.proposed = len(rows)
        log.info(
            "proposed %s (endDate %s) for %d entitlements in %d messages (cause %s%s)",
            status,
            end_date,
            result.proposed,
            result.messages,
            cause,
            f", by {requested_by}" if requested_by else "",
        )
        outbox.wake_after_commit(result.recipients)
    return result


def cancel_unresolved(order_pks: list[int], now: dt.datetime | None = None) -> int:
    """Cancel, by the hub itself, the entitlements of the cancelled delivery orders
    ``order_pks`` whose student was never resolved (lookup pending or failed): nothing about
    them was ever sent, so there is no party to propose it to. Call it inside the
    transaction that holds the orders' row locks (the cancel's, or the resolver's).

    Their lookups fail with kind ``cancelled`` (a pending one is not asked again); each
    entitlement becomes ``cancelled`` with its order's endDate, its URL statuses that may
    still move there ``cancelled``, through the one writer of status changes
    (``entitlements.status``), with StatusEvents of cause ``intake`` pointing at the
    order's first cancellation. Returns the number of entitlements cancelled."""
    now = now or timezone.now()
    rows = list(
        # NO KEY, as the replay locks entitlements: a plain FOR UPDATE would block the
        # KEY SHARE of a concurrent commit's StatusEvents pointing at them.
        Entitlement.objects.select_for_update(of=("self",), no_key=True)
        .filter(
            delivery_order_id__in=order_pks,
            delivery_order__status=DeliveryOrderStatus.CANCELLED,
            status=EntitlementStatus.CREATED,
            enrollment_lookup__state__in=[LookupState.PENDING, LookupState.FAILED],
        )
        .order_by("id")
        .values_list("id", "status", "delivery_order_id", "delivery_order__end_date")
    )
    if not rows:
        return 0
    pks = [pk for pk, _, _, _ in rows]
    EnrollmentLookup.objects.filter(entitlement_id__in=pks).exclude(
        state=LookupState.RESOLVED
    ).update(
        state=LookupState.FAILED,
        next_attempt_at=None,
        error_kind="cancelled",
        last_error="the delivery order was cancelled before the enrollment resolved; "
        "the hub cancelled the entitlement (nothing had been sent about it)",
    )
    cancellable = sorted(sources(Subject.URL, UrlStatus.CANCELLED))
    url_rows = list(
        EntitlementUrlStatus.objects.select_for_update()
        .filter(entitlement_id__in=pks, status__in=cancellable)
        .order_by("id")
        .values_list("id", "entitlement_id", "portal_id", "status")
    )
    first_cancel: dict[int, tuple[int, str]] = {}
    for order_pk, intake_pk, reference_id in (
        DeliveryOrderIntake.objects.filter(
            delivery_order_id__in={order_pk for _, _, order_pk, _ in rows},
            action=DeliveryOrderIntake.Action.CANCEL,
        )
        .order_by("-id")
        .values_list("delivery_order_id", "id", "reference_id")
    ):
        first_cancel[order_pk] = (intake_pk, reference_id)  # ends on the first (lowest id)
    cause_of = {
        order_pk: Cause(EventCause.INTAKE, *first_cancel.get(order_pk, (None, "")), now)
        for _, _, order_pk, _ in rows
    }
    order_of = {pk: order_pk for pk, _, order_pk, _ in rows}
    write_changes(
        [
            StatusChange(pk, status, EntitlementStatus.CANCELLED, end_date, cause_of[order_pk])
            for pk, status, order_pk, end_date in rows
        ],
        [
            UrlChange(pk, e, p, status, UrlStatus.CANCELLED, cause_of[order_of[e]])
            for pk, e, p, status in url_rows
        ],
        now,
    )
    log.info("cancelled %d unresolved entitlements of orders %s", len(pks), order_pks)
    return len(pks)
