"""OutboundMessage.requested_by and resent_by: the staff user, by name, whose admin action
proposed or re-sent a message (docs/security.md, "Audit"). Additive; a constant default adds
the columns without rewriting the table (PostgreSQL 11+)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("entitlements", "0005_scale_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="outboundmessage",
            name="requested_by",
            field=models.CharField(blank=True, db_default="", max_length=150),
        ),
        migrations.AddField(
            model_name="outboundmessage",
            name="resent_by",
            field=models.CharField(blank=True, db_default="", max_length=150),
        ),
    ]
