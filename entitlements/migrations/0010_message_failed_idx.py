"""The failed outbound messages by recipient (``message_failed_idx``), so that the gauge of
``GET /metrics`` (``aanspraak_outbound_messages{state="failed"}``) counts them from the index
instead of reading the whole table (docs/operations.md, "Metrics").

Additive; built with CREATE INDEX CONCURRENTLY on PostgreSQL (writes go on while it builds),
so the migration is not atomic (docs/operations.md, "Indexes and JIT").
"""

from django.db import migrations, models

from entitlements.migrations._concurrently import AddIndexConcurrentlyIfPostgres


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("aanspraak", "0001_initial"),
        ("entitlements", "0009_message_request_id"),
    ]

    operations = [
        AddIndexConcurrentlyIfPostgres(
            model_name="outboundmessage",
            index=models.Index(
                condition=models.Q(("state", "failed")),
                fields=["recipient"],
                name="message_failed_idx",
            ),
        ),
    ]
