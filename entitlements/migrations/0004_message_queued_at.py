"""OutboundMessage.queued_at: the retry horizon runs from when a message was (last) queued,
so a re-send from the admin gets the whole horizon again (review finding F4)."""

import django.db.models.functions.datetime
from django.db import migrations, models
from django.db.models import F


def backfill_pending(apps, schema_editor):
    # Existing rows got the migration's time; the pending ones keep the horizon they had.
    OutboundMessage = apps.get_model("entitlements", "OutboundMessage")
    OutboundMessage.objects.filter(state="pending").update(queued_at=F("created_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("entitlements", "0003_hot_path_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="outboundmessage",
            name="queued_at",
            field=models.DateTimeField(db_default=django.db.models.functions.datetime.Now()),
        ),
        migrations.RunPython(backfill_pending, migrations.RunPython.noop),
    ]
