"""Autovacuum of the confirmations table after 1 % of its rows changed instead of 20 %.

Every confirmation is inserted pending and updated once when decided; the decided rows leave
dead entries in the partial index on pending rows (``confirmation_pending_idx``) that the
apply worker's claim must step over until a vacuum removes them: after 20,000 decisions the
claim's first row took 9-19 ms instead of well under 1 ms (docs/performance.md). PostgreSQL
only; SQLite has no autovacuum."""

from django.db import migrations

TABLE = "confirmations_confirmation"


def vacuum_often(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"ALTER TABLE {TABLE} SET (autovacuum_vacuum_scale_factor = 0.01, "
            "autovacuum_analyze_scale_factor = 0.02)"
        )


def vacuum_as_default(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"ALTER TABLE {TABLE} RESET (autovacuum_vacuum_scale_factor, "
            "autovacuum_analyze_scale_factor)"
        )


class Migration(migrations.Migration):
    dependencies = [("confirmations", "0002_hot_path_indexes")]

    operations = [migrations.RunPython(vacuum_often, vacuum_as_default)]
