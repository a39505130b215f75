"""Status events are kept: PostgreSQL refuses every UPDATE of an entitlements_statusevent row,
and every DELETE unless the transaction says it purges on purpose (docs/security.md, "Audit").

The hub never updates or deletes a status event, nor the entitlements and orders they belong
to (whose deletion would cascade to them), so no flow of the hub meets the trigger. A
deliberate purge (retention of personal data) runs ``SET LOCAL hub.purge_status_events =
'on'`` in its transaction first. TRUNCATE (the test suite's flush) fires no row trigger. The
embedded SQLite default has no guard: it is for laptops, not for records anyone relies on.
"""

from django.db import migrations

FUNCTION = """
CREATE FUNCTION entitlements_statusevent_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('hub.purge_status_events', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'status events are kept: % of entitlements_statusevent refused', TG_OP
        USING ERRCODE = 'restrict_violation',
              HINT = 'docs/security.md, "Audit"';
END
$$
"""
TRIGGER = """
CREATE TRIGGER entitlements_statusevent_kept
    BEFORE UPDATE OR DELETE ON entitlements_statusevent
    FOR EACH ROW EXECUTE FUNCTION entitlements_statusevent_kept()
"""

DROP = (
    "DROP TRIGGER IF EXISTS entitlements_statusevent_kept ON entitlements_statusevent",
    "DROP FUNCTION IF EXISTS entitlements_statusevent_kept()",
)


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in (FUNCTION, TRIGGER):
            schema_editor.execute(statement, params=None)  # "%" is no placeholder here


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in DROP:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("entitlements", "0006_message_requested_by"),
    ]

    operations = [migrations.RunPython(create, drop)]
