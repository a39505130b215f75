"""Indexes for the hot and periodic queries at national scale (docs/performance.md, "Scale"):

- ``entitlement_unexpired_idx``: the expiry sweep reads the entitlements of an expired order
  that are not expired yet, instead of walking the whole primary key per batch;
- ``message_pending_claim_idx`` (recipient, next_attempt_at, id) where pending replaces
  ``message_pending_due_idx``: the dispatch claim's whole sort key, so a claim of 100 reads
  100 rows, not every due message of the recipient;
- ``enrollmentlookup_claim_idx`` (next_attempt_at, id) where pending replaces
  ``enrollmentlookup_due_idx`` for the same reason.

Built with CREATE INDEX CONCURRENTLY on PostgreSQL (writes go on while they build; see
docs/operations.md), so the migration is not atomic; the new indexes come before the old
ones are dropped, so the claims never lack one.
"""

from django.db import migrations, models

from entitlements.migrations._concurrently import (
    AddIndexConcurrentlyIfPostgres,
    RemoveIndexConcurrentlyIfPostgres,
)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("aanspraak", "0001_initial"),
        ("entitlements", "0004_message_queued_at"),
    ]

    operations = [
        AddIndexConcurrentlyIfPostgres(
            model_name="entitlement",
            index=models.Index(
                condition=models.Q(
                    ("status__in", ("created", "entitled", "licensed", "cancelled", "blocked"))
                ),
                fields=["delivery_order"],
                name="entitlement_unexpired_idx",
            ),
        ),
        AddIndexConcurrentlyIfPostgres(
            model_name="outboundmessage",
            index=models.Index(
                condition=models.Q(("state", "pending")),
                fields=["recipient", "next_attempt_at", "id"],
                name="message_pending_claim_idx",
            ),
        ),
        AddIndexConcurrentlyIfPostgres(
            model_name="enrollmentlookup",
            index=models.Index(
                condition=models.Q(("state", "pending")),
                fields=["next_attempt_at", "id"],
                name="enrollmentlookup_claim_idx",
            ),
        ),
        RemoveIndexConcurrentlyIfPostgres(
            model_name="outboundmessage",
            name="message_pending_due_idx",
        ),
        RemoveIndexConcurrentlyIfPostgres(
            model_name="enrollmentlookup",
            name="enrollmentlookup_due_idx",
        ),
    ]
