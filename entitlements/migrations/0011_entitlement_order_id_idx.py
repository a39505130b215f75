"""An order's entitlements in primary-key order (``entitlement_order_id_idx``), so that the
admin's list of one order's entitlements, newest first, reads only that order's rows
(docs/support-desk.md, "At national size").

Additive; built with CREATE INDEX CONCURRENTLY on PostgreSQL (writes go on while it builds),
so the migration is not atomic (docs/operations.md, "Indexes and JIT").
"""

from django.db import migrations, models

from entitlements.migrations._concurrently import AddIndexConcurrentlyIfPostgres


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("entitlements", "0010_message_failed_idx"),
    ]

    operations = [
        AddIndexConcurrentlyIfPostgres(
            model_name="entitlement",
            index=models.Index(fields=["delivery_order", "id"], name="entitlement_order_id_idx"),
        ),
    ]
