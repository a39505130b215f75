"""The outbound messages' gauge of ``GET /metrics``, read at scrape time (docs/operations.md,
"Metrics"): messages per recipient that wait to be delivered (``pending``) or were given up
(``failed``).

Delivered messages are left out on purpose: they are almost every row of the table, and
counting them would read the whole table at every scrape. The two states counted each have a
partial index led by the recipient (``message_pending_claim_idx``, ``message_failed_idx``), so
each count reads only the index entries of its state; the recipients' names come from the
small party table.
"""

from __future__ import annotations

from django.db.models import Count

from aanspraak.metrics.scrape import ScrapeGauge
from aanspraak.models import Party
from entitlements.models import OutboundMessage
from entitlements.statuses import MessageState

GAUGED_STATES = (MessageState.PENDING, MessageState.FAILED)


def outbound_gauges() -> list[ScrapeGauge]:
    """``aanspraak_outbound_messages{recipient, state}`` for the pending and failed messages
    (three queries: one per state, one for the names)."""
    counts: dict[tuple[int, str], int] = {}
    for state in GAUGED_STATES:
        # One state per query: the planner uses a partial index only when the query's
        # condition implies the index's (state = 'pending' does; state IN (...) does not).
        rows = (
            OutboundMessage.objects.filter(state=state)
            .order_by()
            .values_list("recipient_id")
            .annotate(n=Count("*"))
        )
        counts.update(((recipient, state.value), n) for recipient, n in rows)
    names = dict(
        Party.objects.filter(pk__in={recipient for recipient, _ in counts}).values_list(
            "pk", "name"
        )
    )
    samples = [
        ((names.get(recipient, str(recipient)), state), float(n))
        for (recipient, state), n in sorted(counts.items())
    ]
    return [
        ScrapeGauge(
            "aanspraak_outbound_messages",
            "Outbound messages per recipient that are pending (waiting for delivery or a "
            "retry) or failed (given up); delivered ones are not counted here.",
            ("recipient", "state"),
            samples,
        )
    ]
