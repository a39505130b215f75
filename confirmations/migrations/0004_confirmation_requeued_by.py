"""Confirmation.requeued_by and requeued_at: the staff user, by name, who put a rejected
confirmation back in the queue, and when (docs/support-desk.md, "Actions"). Additive; a
constant default adds the column without rewriting the table (PostgreSQL 11+), and the
receive path's INSERT, which names its columns, gets it from the database."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("confirmations", "0003_pending_index_vacuumed_often")]

    operations = [
        migrations.AddField(
            model_name="confirmation",
            name="requeued_by",
            field=models.CharField(blank=True, db_default="", max_length=150),
        ),
        migrations.AddField(
            model_name="confirmation",
            name="requeued_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
