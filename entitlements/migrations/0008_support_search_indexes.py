"""Indexes of the support search (entitlements/selectors/search.py, docs/support-desk.md):

- ``entitlement_enrollment_idx``: an enrollmentId, partial (only entitlements that have one);
- ``entitlement_userids_idx``: a userId among ``userIds``, GIN with ``jsonb_path_ops`` for
  ``user_ids @> '[{"userId": …}]'``, partial; PostgreSQL only (SQLite has no GIN).

Plus the URL status's plural name ("URL statuses"), no change to the database. Built with
CREATE INDEX CONCURRENTLY on PostgreSQL (writes go on while they build; docs/operations.md),
so the migration is not atomic.
"""

import django.contrib.postgres.indexes
from django.db import migrations, models

from entitlements.migrations._concurrently import (
    AddIndexConcurrentlyIfPostgres,
    AddPostgresIndexConcurrently,
)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("entitlements", "0007_status_events_are_kept"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="entitlementurlstatus",
            options={"verbose_name": "URL status", "verbose_name_plural": "URL statuses"},
        ),
        AddIndexConcurrentlyIfPostgres(
            model_name="entitlement",
            index=models.Index(
                condition=models.Q(("enrollment_id__isnull", False)),
                fields=["enrollment_id"],
                name="entitlement_enrollment_idx",
            ),
        ),
        AddPostgresIndexConcurrently(
            model_name="entitlement",
            index=django.contrib.postgres.indexes.GinIndex(
                condition=models.Q(("user_ids__isnull", False)),
                fields=["user_ids"],
                name="entitlement_userids_idx",
                opclasses=["jsonb_path_ops"],
            ),
        ),
    ]
