"""``confirmation_rejected_ref_idx``: the rejected confirmations by the entitlementId as
received, for the entitlement's timeline (docs/support-desk.md, "Timeline"): a rejected row
has no entitlement. Partial (``state = 'rejected'``), so the request's INSERT of a pending row
never touches it. Built with CREATE INDEX CONCURRENTLY on PostgreSQL (writes go on while it
builds), so the migration is not atomic."""

from django.db import migrations, models

from entitlements.migrations._concurrently import AddIndexConcurrentlyIfPostgres


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("confirmations", "0004_confirmation_requeued_by")]

    operations = [
        AddIndexConcurrentlyIfPostgres(
            model_name="confirmation",
            index=models.Index(
                condition=models.Q(("state", "rejected")),
                fields=["entitlement_ref"],
                name="confirmation_rejected_ref_idx",
            ),
        ),
    ]
