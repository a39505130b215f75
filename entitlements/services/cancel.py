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
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from aanspraak.db.bulk import insert_rows
from entitlements import outbox
from entitlements.models import (
    Entitlement,
    EntitlementUrlStatus,
    OutboundMessage,
)
from entitlements.outbox.messages import MESSAGE_FIELDS, request_row
from entitlements.statuses import EntitlementStatus, MessageKind, UrlStatus

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
        outbox.wake_after_commit(result.recipients)
    return result
