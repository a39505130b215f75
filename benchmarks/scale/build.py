"""Building the shape of a national school start by set-based SQL (``INSERT ... SELECT`` over
``generate_series``, then ``VACUUM (ANALYZE)``), or bringing a kept database to the current
migrations."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Shape:
    """The sizes of one build; ``factor`` 1.0 is a national school start."""

    factor: float
    orders: int
    big_orders: int
    big_size: int
    schools: int

    @classmethod
    def of(cls, factor: float) -> Shape:
        # The big order shrinks slower than the rest, so a small factor still has one order
        # large enough to show how a plan grows.
        return cls(
            factor=factor,
            orders=max(20, round(2000 * factor)),
            big_orders=max(1, round(4 * factor)),
            big_size=max(2000, round(50_000 * math.sqrt(factor))),
            schools=max(5, round(400 * factor)),
        )


def build(shape: Shape, log=print) -> dict[str, float]:
    """Migrate, load the test registry, and fill every table by set-based SQL. Returns the
    seconds of each step."""
    from django.core.management import call_command
    from django.db import connection

    from aanspraak.services.registry import load_registry
    from tests.support.factories import REGISTRY

    steps: dict[str, float] = {}
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    load_registry(REGISTRY)
    steps["migrate and registry"] = time.perf_counter() - started
    with connection.cursor() as cursor:
        fill(cursor, shape, steps, log)
    return steps


def migrate_only() -> dict[str, float]:
    """Bring a kept database to the current migrations (its new indexes built on the full
    tables, as in production), then ANALYZE; the seconds of each migration."""
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    steps: dict[str, float] = {}
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    for migration, _backwards in plan:
        label = f"migrate {migration.app_label}.{migration.name}"
        started = time.perf_counter()
        call_command("migrate", migration.app_label, migration.name, verbosity=0)
        steps[label] = time.perf_counter() - started
        print(f"  {label}: {steps[label]:.1f} s", flush=True)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    steps["ANALYZE"] = time.perf_counter() - started
    return steps


def fill(cursor, shape: Shape, steps: dict[str, float], log=print) -> None:
    """Fill the tables through ``cursor`` (a Django cursor on PostgreSQL, autocommit or in a
    transaction). Each statement is timed into ``steps``."""

    def run(label: str, sql: str, params: dict | None = None) -> None:
        started = time.perf_counter()
        cursor.execute(sql, params or {})
        steps[label] = steps.get(label, 0.0) + time.perf_counter() - started
        log(f"  {label}: {steps[label]:.1f} s")

    ids = {}
    cursor.execute("SELECT name, id FROM aanspraak_party")
    ids.update(dict(cursor.fetchall()))
    cursor.execute("SELECT product_id, id FROM aanspraak_product")
    products = dict(cursor.fetchall())
    p = {
        "seed": 0.42,
        "orders": shape.orders,
        "big_orders": shape.big_orders,
        "big_size": shape.big_size,
        "schools": shape.schools,
        "oost": ids["Boekhandel Oost"],
        "zee": ids["Boekhandel Zee"],
        "noord": ids["Uitgeverij Noord"],
        "berg": ids["Uitgeverij Berg"],
        "zuid": ids["Portal Zuid"],
        "klei": ids["Portal Klei"],
        "west": ids["Dashboard West"],
        "sis": ids["SIS Example"],
        "prod_noord": products["9789001000011"],
        "prod_berg": products["9789002000010"],
    }
    # Foreign keys are checked by construction here; replica mode skips their triggers
    # (several times faster). Commit wait is not needed for a throw-away database.
    cursor.execute("SET session_replication_role = replica")
    cursor.execute("SET synchronous_commit = off")
    cursor.execute("SET maintenance_work_mem = '256MB'")
    cursor.execute("SELECT setseed(%(seed)s)", p)
    run(
        "schools",
        """
        INSERT INTO aanspraak_school
            (organisation_master_identifier, name, administration_id, created_at, updated_at)
        SELECT 'S' || lpad(g::text, 5, '0'), 'Scale school ' || g, %(sis)s, now(), now()
        FROM generate_series(1, %(schools)s) g;
        INSERT INTO aanspraak_consent (school_id, party_id, granted_at)
        SELECT s.id, party, now() FROM aanspraak_school s,
            unnest(ARRAY[%(zuid)s, %(klei)s, %(west)s]::bigint[]) party
        WHERE s.organisation_master_identifier LIKE 'S%%';
        """,
        p,
    )
    # One row per order: its size and phase. 'old' orders expired a year ago (already
    # expired), 'due' orders expired yesterday (the sweep's work), the rest are current.
    run(
        "orders",
        """
        CREATE TEMP TABLE scale_order AS
        SELECT g AS n,
               CASE WHEN g <= %(big_orders)s THEN %(big_size)s
                    ELSE 100 + floor(1900 * power(random(), 1.5))::int END AS size,
               CASE WHEN g <= %(big_orders)s THEN 'live'
                    WHEN g %% 10 = 3 THEN 'old' WHEN g %% 7 = 1 THEN 'due'
                    ELSE 'live' END AS phase,
               g %% 10 = 5 AS codes,
               g %% 50 = 7 AS by_enrollment,
               g = 1 OR random() < 0.55 AS two_portals
        FROM generate_series(1, %(orders)s) g;
        INSERT INTO entitlements_deliveryorder
            (seller_id, delivery_order_id, contract_id, school_id, product_id, delivery_type,
             start_date, activation_until_date, expiration_date, end_date, status,
             created_at, updated_at)
        SELECT CASE WHEN o.n %% 3 = 0 THEN %(zee)s ELSE %(oost)s END,
               CASE WHEN o.n = 1 THEN 'DO-SCALE-BIG-1'
                    ELSE 'DO-SCALE-' || lpad(o.n::text, 6, '0') END,
               'C-' || lpad((o.n %% 300)::text, 4, '0'),
               (SELECT min(id) FROM aanspraak_school) + o.n %% %(schools)s,
               CASE WHEN o.n %% 4 = 0 THEN %(prod_berg)s ELSE %(prod_noord)s END,
               CASE WHEN o.codes THEN 'school-activationcodes' ELSE 'school-students' END,
               x.expires - 364, x.expires - 300, x.expires, NULL, 'ordered', now(), now()
        FROM scale_order o,
             LATERAL (SELECT CASE o.phase WHEN 'old' THEN current_date - 400
                                          WHEN 'due' THEN current_date - 1
                                          ELSE current_date + 240 END AS expires) x;
        ALTER TABLE scale_order ADD COLUMN id bigint, ADD COLUMN seller_id bigint,
            ADD COLUMN licensor_id bigint;
        UPDATE scale_order o SET id = d.id, seller_id = d.seller_id,
            licensor_id = CASE WHEN d.product_id = %(prod_berg)s THEN %(berg)s ELSE %(noord)s END
        FROM entitlements_deliveryorder d
        WHERE d.delivery_order_id = CASE WHEN o.n = 1 THEN 'DO-SCALE-BIG-1'
                                         ELSE 'DO-SCALE-' || lpad(o.n::text, 6, '0') END;
        INSERT INTO entitlements_deliveryorderportal (delivery_order_id, portal_id)
        SELECT o.id, %(zuid)s FROM scale_order o
        UNION ALL SELECT o.id, %(klei)s FROM scale_order o WHERE o.two_portals;
        INSERT INTO entitlements_deliveryorderintake
            (seller_id, reference_id, receive_id, delivery_order_id, action, body, received_at)
        SELECT o.seller_id, 'REF-SCALE-' || o.n, gen_random_uuid(), o.id, 'order', '{}'::jsonb,
               now() - interval '30 days'
        FROM scale_order o;
        """,
        p,
    )
    run(
        "entitlements",
        """
        INSERT INTO entitlements_entitlement
            (entitlement_id, delivery_order_id, entitlement_type, status, end_date,
             user_master_identifier, user_ids, enrollment_id, activation_code, specification,
             status_changed_at, date_created, date_last_modified)
        SELECT gen_random_uuid(), s.id,
               CASE WHEN s.codes THEN 'school-activationcode' ELSE 'school-student' END,
               s.status,
               CASE WHEN s.status IN ('cancelled', 'blocked') THEN current_date - 10 END,
               CASE WHEN NOT s.codes AND NOT s.by_enrollment
                    THEN 'https://ketenid.nl/201703/' || md5(s.n || '-' || s.i) END,
               NULL,
               CASE WHEN s.by_enrollment THEN 'ENR-' || s.n || '-' || s.i END,
               CASE WHEN s.codes THEN upper(substr(md5(s.n || '/' || s.i), 1, 16)) END,
               CASE WHEN s.codes
                    THEN jsonb_build_object('activationCode',
                                            upper(substr(md5(s.n || '/' || s.i), 1, 16)))
                    ELSE '{}'::jsonb END,
               now() - interval '20 days', now() - interval '30 days', now() - interval '20 days'
        FROM (
            SELECT o.*,
                   CASE WHEN o.phase = 'old' THEN
                            CASE WHEN r < 0.05 THEN 'cancelled' ELSE 'expired' END
                        WHEN o.by_enrollment AND r < 0.2 THEN 'created'
                        WHEN r < 0.05 THEN 'created' WHEN r < 0.45 THEN 'entitled'
                        WHEN r < 0.95 THEN 'licensed' WHEN r < 0.98 THEN 'cancelled'
                        ELSE 'blocked' END AS status
            FROM (SELECT o.*, i, random() AS r
                  FROM scale_order o, generate_series(1, o.size) i) o
        ) s
        ORDER BY s.n, s.i;
        """,
        p,
    )
    run(
        "URL statuses",
        """
        INSERT INTO entitlements_entitlementurlstatus
            (entitlement_id, portal_id, status, status_changed_at, date_last_modified)
        SELECT e.id, portal,
               CASE WHEN e.status = 'expired' THEN 'expired'
                    WHEN e.status = 'created' THEN 'uninitialized'
                    WHEN e.status IN ('cancelled', 'blocked') AND r < 0.8 THEN e.status
                    WHEN r < 0.05 THEN 'uninitialized' WHEN r < 0.3 THEN 'initialized'
                    ELSE 'processed' END,
               now() - interval '20 days', now() - interval '20 days'
        FROM (SELECT e.id, e.status, e.delivery_order_id, random() AS r
              FROM entitlements_entitlement e) e
        JOIN scale_order o ON o.id = e.delivery_order_id,
        LATERAL unnest(CASE WHEN o.two_portals THEN ARRAY[%(zuid)s, %(klei)s]::bigint[]
                            ELSE ARRAY[%(zuid)s]::bigint[] END) portal
        ORDER BY e.id, portal;
        """,
        p,
    )
    # One request per entitlement to its registry and one per portal, and one seller
    # confirmation per order. Order 1's requests to Portal Zuid are all due (the recipient
    # with 50,000 due); elsewhere most are delivered, some due, some waiting, a few failed.
    run(
        "outbound messages",
        """
        INSERT INTO entitlements_outboundmessage
            (reference_id, kind, recipient_id, entitlement_id, delivery_order_id, intake_id,
             proposed_entitlement_status, proposed_url_status, proposed_end_date, body, state,
             attempt_count, next_attempt_at, last_error, created_at, queued_at, delivered_at)
        SELECT gen_random_uuid(), 'entitlement-request', m.recipient, m.entitlement_id,
               NULL, NULL, m.p_status, m.p_url, NULL,
               jsonb_build_object('entitlementReferenceId', m.entitlement_id,
                                  'entitlement', jsonb_build_object('entitlementStatus',
                                      coalesce(m.p_status, 'entitled'),
                                      'deliveryOrderId', m.n)),
               m.state,
               CASE WHEN m.state = 'delivered' THEN 1 ELSE 1 + floor(m.r2 * 5)::int END,
               CASE WHEN m.state <> 'pending' THEN NULL
                    WHEN m.due THEN now() - (m.r2 * interval '2 hours')
                    ELSE now() + (m.r2 * interval '2 hours') END,
               CASE WHEN m.state = 'delivered' THEN '' ELSE 'HTTP 503' END,
               now() - interval '30 days', now() - interval '30 days',
               CASE WHEN m.state = 'delivered' THEN now() - interval '29 days' END
        FROM (
            SELECT e.id AS entitlement_id, o.n, t.recipient, t.p_status, t.p_url, r2,
                   CASE WHEN o.n = 1 AND t.recipient = %(zuid)s THEN 'pending'
                        WHEN o.phase = 'old' OR r < 0.96 THEN 'delivered'
                        WHEN r < 0.99 THEN 'pending' ELSE 'failed' END AS state,
                   (o.n = 1 AND t.recipient = %(zuid)s) OR r < 0.975 AS due
            FROM (SELECT e.id, e.delivery_order_id, e.status, random() AS r, random() AS r2
                  FROM entitlements_entitlement e WHERE e.status <> 'created') e
            JOIN scale_order o ON o.id = e.delivery_order_id,
            LATERAL (
                SELECT o.licensor_id AS recipient, 'entitled'::text AS p_status,
                       NULL::text AS p_url
                UNION ALL SELECT %(zuid)s, NULL, 'initialized'
                UNION ALL SELECT %(klei)s, NULL, 'initialized' WHERE o.two_portals
            ) t
        ) m;
        INSERT INTO entitlements_outboundmessage
            (reference_id, kind, recipient_id, entitlement_id, delivery_order_id, intake_id,
             body, state, attempt_count, last_error, created_at, queued_at, delivered_at)
        SELECT gen_random_uuid(), 'deliveryorder-confirmation', o.seller_id, NULL, o.id, i.id,
               '{}'::jsonb, 'delivered', 1, '', now() - interval '30 days',
               now() - interval '30 days', now() - interval '29 days'
        FROM scale_order o JOIN entitlements_deliveryorderintake i ON i.delivery_order_id = o.id;
        """,
        p,
    )
    # The registries' and portals' answers to most delivered requests; a backlog of recent
    # ones is still pending (the apply worker's queue), the rest decided.
    run(
        "confirmations",
        """
        INSERT INTO confirmations_confirmation
            (sender_id, client_id, kind, receive_id, reference_id, entitlement_ref, product_id,
             processed_timestamp, new_entitlement_status, url_portal, new_url_status, body,
             state, reason, entitlement_id, message_id, received_at, decided_at)
        SELECT c.recipient_id, NULL, 'confirmation', gen_random_uuid()::text,
               c.reference_id::text, c.entitlement_uuid::text, '9789001000011',
               now() - interval '28 days',
               CASE WHEN c.proposed_entitlement_status IS NOT NULL THEN 'entitled' END,
               CASE WHEN c.proposed_url_status IS NOT NULL THEN c.portal_id END,
               CASE WHEN c.proposed_url_status IS NOT NULL THEN 'processed' END,
               jsonb_build_object('entitlementReferenceId', c.reference_id),
               CASE WHEN c.pending THEN 'pending' WHEN c.r < 0.97 THEN 'applied'
                    ELSE 'duplicate' END,
               '',
               CASE WHEN NOT c.pending THEN c.entitlement_id END,
               CASE WHEN NOT c.pending THEN c.id END,
               CASE WHEN c.pending THEN now() - (c.r * interval '20 minutes')
                    ELSE now() - interval '28 days' END,
               CASE WHEN NOT c.pending THEN now() - interval '28 days' END
        FROM (
            SELECT m.id, m.reference_id, m.recipient_id, m.entitlement_id,
                   m.proposed_entitlement_status, m.proposed_url_status, e.entitlement_id
                   AS entitlement_uuid, pa.portal_id, r, r < 0.05 AS pending
            FROM (SELECT m.*, random() AS r FROM entitlements_outboundmessage m
                  WHERE m.state = 'delivered' AND m.kind = 'entitlement-request') m
            JOIN entitlements_entitlement e ON e.id = m.entitlement_id
            JOIN aanspraak_party pa ON pa.id = m.recipient_id
            WHERE m.r < 0.6
        ) c;
        """,
        p,
    )
    run(
        "status events",
        """
        INSERT INTO entitlements_statusevent
            (entitlement_id, portal_id, from_status, to_status, cause, cause_pk, cause_ref,
             effective_at, recorded_at)
        SELECT e.id, NULL::bigint, '', 'created', 'intake', NULL::bigint, '',
               e.date_created, e.date_created
        FROM entitlements_entitlement e
        UNION ALL
        SELECT e.id, NULL, 'created', CASE WHEN e.status = 'created' THEN 'entitled'
                                           ELSE e.status END,
               'confirmation', NULL, '', e.status_changed_at, e.status_changed_at
        FROM entitlements_entitlement e WHERE e.status <> 'created'
        UNION ALL
        SELECT u.entitlement_id, u.portal_id, 'uninitialized', u.status, 'delivery', NULL, '',
               u.status_changed_at, u.status_changed_at
        FROM entitlements_entitlementurlstatus u WHERE u.status IN ('processed', 'expired')
              AND u.id %% 5 = 0;
        """,
        p,
    )
    run(
        "enrollment lookups",
        """
        INSERT INTO entitlements_enrollmentlookup
            (entitlement_id, state, attempt_count, next_attempt_at, last_error, error_kind,
             http_status, enrollment, queued_at, checked_at, resolved_at)
        SELECT e.id, l.state, 1,
               CASE WHEN l.state = 'pending' THEN
                    CASE WHEN r < 0.1 THEN now() - interval '1 minute'
                         ELSE now() + interval '1 hour' END END,
               '', '', NULL, NULL, now() - interval '30 days', now() - interval '1 day',
               CASE WHEN l.state = 'resolved' THEN now() - interval '29 days' END
        FROM (SELECT e.*, random() AS r FROM entitlements_entitlement e
              WHERE e.enrollment_id IS NOT NULL) e,
        LATERAL (SELECT CASE WHEN e.status = 'created' THEN 'pending'
                             ELSE 'resolved' END AS state) l;
        """,
        p,
    )
    cursor.execute("SET session_replication_role = origin")
    # VACUUM too: a live database is vacuumed by autovacuum (visibility map set), and doing
    # it here keeps autovacuum from changing plans in the middle of the measurements.
    run("VACUUM ANALYZE", "VACUUM (ANALYZE)")
