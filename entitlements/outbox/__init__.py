"""The outbox: the hub's outbound messages (docs/delivery.md, "Outbound messages"): what
is sent, to whom, and what an attempt's result does to the message.

The queue is the ``OutboundMessage`` table itself. A drain works for ONE recipient: it claims
a batch of that recipient's due messages (``SELECT ... FOR UPDATE SKIP LOCKED``, then a lease
pushes ``next_attempt_at`` past the time a batch can take, so a crashed worker's batch is
sent again after the lease), sends the batch concurrently from a thread pool, records every
attempt and updates the messages set-based, and loops while messages are due, within a time
budget (then it re-queues itself behind the other recipients' drains). Results are written
only for messages the drain still holds (its lease), so a drain that outlived its lease
cannot undo another's delivery. At most one drain per recipient runs at a time
(``aanspraak.locks``), on the ``outbound`` queue: a slow or failing party only
ever occupies one worker process. The periodic sweep starts a drain for every recipient with
due messages: that drives retries and repairs lost wake-ups.

Delivery is at least once: a recipient may see the same ``entitlementReferenceId`` twice
(after a lease expired: its worker died before recording the answers, or overran it) and
must treat it as the same request; the bound is in docs/delivery.md.

``messages`` builds the rows of new Entitlement requests; ``claim`` → ``render`` →
``send`` → ``record`` is one batch; ``drain`` loops over batches; ``wake`` starts drains. The
claim, the lease check and the loop are the hub's one worker machinery
(``aanspraak.workers``); a delivery's URL status change goes through the one writer of status
changes (``entitlements.status``).
"""

from .claim import Claim, claim_due
from .drain import DrainReport, drain
from .messages import MESSAGE_FIELDS, creation_rows, request_row
from .record import BatchReport, mark_initialized, record_results
from .render import Message, Prepared, entitlement_body, prepare
from .send import send_batch
from .wake import due_recipients, wake_after_commit

__all__ = [
    "MESSAGE_FIELDS",
    "BatchReport",
    "Claim",
    "DrainReport",
    "Message",
    "Prepared",
    "claim_due",
    "creation_rows",
    "drain",
    "due_recipients",
    "entitlement_body",
    "mark_initialized",
    "prepare",
    "record_results",
    "request_row",
    "send_batch",
    "wake_after_commit",
]
