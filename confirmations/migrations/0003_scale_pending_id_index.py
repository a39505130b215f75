"""``confirmation_pending_id_idx``: the apply worker claims the pending backlog in id order,
so a claim of 500 reads 500 rows instead of the whole backlog (docs/performance.md,
"Scale"). Built concurrently on PostgreSQL (docs/operations.md), hence not atomic."""

from django.db import migrations, models

from entitlements.migrations._concurrently import AddIndexConcurrentlyIfPostgres


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("confirmations", "0002_hot_path_indexes"),
        ("entitlements", "0005_scale_indexes"),
    ]

    operations = [
        AddIndexConcurrentlyIfPostgres(
            model_name="confirmation",
            index=models.Index(
                condition=models.Q(("state", "pending")),
                fields=["id"],
                name="confirmation_pending_id_idx",
            ),
        ),
    ]
