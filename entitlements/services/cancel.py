"""Cancel and block by the hub: proposals to the licence registry and the portals.

The hub never changes an entitlement's status itself here: it proposes ``cancelled`` or
``blocked`` with an ``endDate`` (an Entitlement request to the product's licensor and one to
each portal whose URL status is still live), and the status changes when they confirm
(the confirmations worker). A licensed entitlement cannot be cancelled by the hub (the
licence was activated); it can be blocked.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from aanspraak.db.bulk import insert_rows
from entitlements import dispatch
from entitlements.models import (
    Entitlement,
    EntitlementUrlStatus,
    OutboundMessage,
)
from entitlements.statuses import EntitlementStatus, MessageKind, MessageState, UrlStatus

log = logging.getLogger(__name__)

# Which current statuses may still be proposed each end status.
PROPOSABLE_FROM = {
    EntitlementStatus.CANCELLED: (EntitlementStatus.CREATED, EntitlementStatus.ENTITLED),
    EntitlementStatus.BLOCKED: (
        EntitlementStatus.CREATED,
        EntitlementStatus.ENTITLED,
        EntitlementStatus.LICENSED,
    ),
}
ENDED_URL_STATUSES = (UrlStatus.CANCELLED, UrlStatus.BLOCKED, UrlStatus.EXPIRED)

MESSAGE_FIELDS = (
    "reference_id",
    "kind",
    "recipient_id",
    "entitlement_id",
    "proposed_entitlement_status",
    "proposed_url_status",
    "proposed_end_date",
    "state",
    "attempt_count",
    "next_attempt_at",
    "last_error",
    "created_at",
)


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
) -> Proposal:
    """Propose ``status`` (cancelled or blocked) with ``end_date`` for every entitlement of
    the queryset that can still take it and has no such proposal yet. Set-based: a constant
    number of queries whatever the size of the selection. Dispatch is woken after commit.
    ``cause`` (an EventCause: intake, admin) goes to the log; the StatusEvents are written
    when the parties confirm."""
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
                yield request_row(
                    recipient_id=licensor_pk,
                    entitlement_pk=pk,
                    entitlement_status=status,
                    url_status=None,
                    end_date=end_date,
                    now=now,
                )
                for portal_pk in portals_of.get(pk, ()):
                    result.recipients.add(portal_pk)
                    yield request_row(
                        recipient_id=portal_pk,
                        entitlement_pk=pk,
                        entitlement_status=None,
                        url_status=status,
                        end_date=end_date,
                        now=now,
                    )

        result.messages = insert_rows(OutboundMessage, MESSAGE_FIELDS, messages())
        result.proposed = len(rows)
        log.info(
            "proposed %s (endDate %s) for %d entitlements in %d messages (cause %s)",
            status,
            end_date,
            result.proposed,
            result.messages,
            cause,
        )
        dispatch.wake_after_commit(result.recipients)
    return result


def request_row(
    *,
    recipient_id: int,
    entitlement_pk: int,
    entitlement_status: str | None,
    url_status: str | None,
    end_date: dt.date | None,
    now: dt.datetime | str,
    reference_id: str | None = None,
) -> tuple:
    """One pending Entitlement request, as a row in MESSAGE_FIELDS order (for insert_rows).
    Requests carry no order or intake link (those are for seller confirmations: the order is
    the entitlement's, and the partial indexes on the links stay small)."""
    return (
        reference_id or str(uuid.uuid4()),
        MessageKind.ENTITLEMENT_REQUEST,
        recipient_id,
        entitlement_pk,
        entitlement_status,
        url_status,
        end_date,
        MessageState.PENDING,
        0,
        now,
        "",
        now,
    )


def creation_rows(
    entitlements: Iterable[tuple[int, int, Iterable[int]]],
    now: dt.datetime | str,
    references: Iterator[str] | None = None,
    recipients: set[int] | None = None,
) -> Iterator[tuple]:
    """The Entitlement requests that put new entitlements out to the parties: ``created`` to
    the licensor and ``initialized`` to each portal, for every ``(entitlement pk, licensor
    pk, portal pks)``; rows for insert_rows with MESSAGE_FIELDS. Used by intake and by the
    release of students resolved by enrollment. ``references`` supplies the
    entitlementReferenceIds (fresh UUIDs by default); every recipient is added to
    ``recipients``."""
    for entitlement_pk, licensor_pk, portal_pks in entitlements:
        if recipients is not None:
            recipients.add(licensor_pk)
        yield request_row(
            recipient_id=licensor_pk,
            entitlement_pk=entitlement_pk,
            entitlement_status=EntitlementStatus.CREATED,
            url_status=None,
            end_date=None,
            now=now,
            reference_id=next(references) if references is not None else None,
        )
        for portal_pk in portal_pks:
            if recipients is not None:
                recipients.add(portal_pk)
            yield request_row(
                recipient_id=portal_pk,
                entitlement_pk=entitlement_pk,
                entitlement_status=None,
                url_status=UrlStatus.INITIALIZED,
                end_date=None,
                now=now,
                reference_id=next(references) if references is not None else None,
            )
