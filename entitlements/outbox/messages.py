"""Building the rows of new Entitlement requests (for ``aanspraak.db.bulk.insert_rows``):
the ones that put new entitlements out to the parties (intake, students resolved by
enrollment) and the proposals of an end (cancel and block). Sending is ``drain``'s."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Iterator

from aanspraak.request_ids import current_request_id
from entitlements.statuses import EntitlementStatus, MessageKind, MessageState, UrlStatus

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
    "request_id",
)


def request_row(
    *,
    recipient_id: int,
    entitlement_pk: int,
    entitlement_status: str | None,
    url_status: str | None,
    end_date: dt.date | None,
    now: dt.datetime | str,
    reference_id: str | None = None,
    request_id: str | None = None,
) -> tuple:
    """One pending Entitlement request, as a row in MESSAGE_FIELDS order (for insert_rows).
    Requests carry no order or intake link (those are for seller confirmations: the order is
    the entitlement's, and the partial indexes on the links stay small). ``request_id``: the
    request that caused it (default: the current request's, none in a worker)."""
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
        request_id if request_id is not None else current_request_id(),
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
    ``recipients``. The rows carry the current request's id (read once)."""
    request_id = current_request_id()
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
            request_id=request_id,
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
                request_id=request_id,
            )
