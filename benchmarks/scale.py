"""Scale benchmark: the hub's hot and periodic queries on a national school start.

Builds, in a database of its own, the shape of a national school start by set-based SQL
(``INSERT ... SELECT`` over ``generate_series``, then ``VACUUM (ANALYZE)``): at
``--factor 1.0`` about 2 M entitlements in 2,000 orders (mostly 100-2,000 entitlements, a
few of 50,000), 3.1 M URL statuses, 5.1 M outbound messages, 2.8 M confirmations and 4.2 M
status events. Then it calls the hub's own selectors and services (the GET of a 50,000
order, the expiry sweep, the dispatch and apply claims, the sweeps, receiving and looking up
confirmations, intake, usage reconciliation) under ``connection.execute_wrapper``: every
statement they run is explained with ``EXPLAIN (ANALYZE, BUFFERS)`` inside a savepoint
(rolled back), then run for real; each call is rolled back at the end, so every query sees
the same database. It prints per statement the plan's top nodes, any Seq Scan of a big
table, rows, time, JIT time, and a verdict: proportional (it reads in proportion to the rows
it returns or changes) or not.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/aanspraak \\
        python -m benchmarks.scale --dsn-db aanspraak_scale_bench --factor 0.05

``--keep`` keeps the database (drop it yourself), ``--write-docs`` writes the table into
docs/performance.md between its markers, ``--json FILE`` writes the figures as JSON (the
test reads them). The database is dropped on every exit path otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import math
import os
import platform
import signal
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
START = "<!-- benchmark:scale:start -->"
END = "<!-- benchmark:scale:end -->"

BIG_ORDER_ID = "DO-SCALE-BIG-1"
# Tables whose whole scan is never acceptable on a hot or periodic path.
BIG_TABLES = (
    "entitlements_entitlement",
    "entitlements_entitlementurlstatus",
    "entitlements_outboundmessage",
    "entitlements_statusevent",
    "confirmations_confirmation",
    "entitlements_enrollmentlookup",
    "entitlements_deliveryattempt",
)
DML = ("SELECT", "UPDATE", "INSERT", "DELETE", "WITH")


# --- The database of its own ------------------------------------------------------------------


def server_urls(dsn_db: str) -> tuple[str, str]:
    """(admin URL, URL of ``dsn_db``) on the server of ``DATABASE_URL``."""
    url = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
    parts = urlsplit(url)
    return (
        urlunsplit(parts._replace(path="/postgres")),
        urlunsplit(parts._replace(path="/" + dsn_db)),
    )


def create_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


# --- Building the national shape ----------------------------------------------------------------


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


# --- Capturing and explaining the code's queries ------------------------------------------------


@dataclass
class Statement:
    """One statement a query ran, with its plan's figures."""

    sql: str
    top: str
    seq_scans: list[str]
    rows_out: int
    rows_read: int
    ms: float
    planning_ms: float
    jit_ms: float
    verdict: str


@dataclass
class QueryResult:
    """One hot or periodic query of the hub: the statements it ran."""

    name: str
    statements: list[Statement] = field(default_factory=list)
    wall_ms: float = 0.0
    note: str = ""

    @property
    def verdict(self) -> str:
        bad = [s for s in self.statements if s.verdict != "proportional"]
        return "proportional" if not bad else "NOT proportional"


def _walk(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from _walk(child)


SCAN_OF_TABLE = ("Seq Scan", "Parallel Seq Scan")
PASS_THROUGH = {"Limit", "LockRows", "ModifyTable", "Sort", "Incremental Sort", "Gather", "Result"}
AGGREGATES = {"Aggregate", "GroupAggregate", "HashAggregate"}


def _shape(node: dict, depth: int = 4) -> str:
    """The top nodes as ``A > B > C``: a node's name, with its index or table."""
    names = []
    while node is not None and len(names) < depth:
        name = node["Node Type"]
        if node.get("Index Name"):
            name += f" {node['Index Name']}"
        elif node.get("Relation Name"):
            name += f" {node['Relation Name']}"
        names.append(name)
        children = node.get("Plans", [])
        node = children[0] if children else None
    return " > ".join(names)


def _work(node: dict) -> int:
    """The rows a statement returns or changes (for an aggregate: the rows it aggregates)."""
    while node is not None:
        kind = node["Node Type"]
        rows = int(node.get("Actual Rows", 0) * max(node.get("Actual Loops", 1), 1))
        children = [c for c in node.get("Plans", []) if c.get("Parent Relationship") != "InitPlan"]
        if kind in AGGREGATES and children:
            return int(
                children[0].get("Actual Rows", 0) * max(children[0].get("Actual Loops", 1), 1)
            )
        if kind in PASS_THROUGH and children and (kind == "ModifyTable" or rows == 0):
            node = children[0]
            continue
        return rows
    return 0


def analyse(plan: dict, sql: str) -> Statement:
    """The figures of one ``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)`` result."""
    root = plan["Plan"]
    seq, read = [], 0
    for node in _walk(root):
        relation = node.get("Relation Name")
        if relation not in BIG_TABLES:
            continue
        loops = max(node.get("Actual Loops", 1), 1)
        if "Scan" in node["Node Type"] and node["Node Type"] != "Bitmap Index Scan":
            read += int(
                (
                    node.get("Actual Rows", 0)
                    + node.get("Rows Removed by Filter", 0)
                    + node.get("Rows Removed by Index Recheck", 0)
                )
                * loops
            )
        if node["Node Type"] in SCAN_OF_TABLE:
            seq.append(f"{node['Node Type']} {relation}")
    work = _work(root)
    jit = plan.get("JIT", {}).get("Timing", {}).get("Total", 0.0)
    proportional = not seq and read <= 10 * work + 2000
    return Statement(
        sql=" ".join(sql.split()),
        top=_shape(root),
        seq_scans=seq,
        rows_out=work,
        rows_read=read,
        ms=plan.get("Execution Time", 0.0),
        planning_ms=plan.get("Planning Time", 0.0),
        jit_ms=jit,
        verdict="proportional" if proportional else "NOT proportional",
    )


class Explainer:
    """An execute wrapper: explains each DML statement in a savepoint (rolled back), then
    runs it for real."""

    def __init__(self, connection):
        self.connection = connection
        self.statements: list[Statement] = []

    def __call__(self, execute, sql, params, many, context):
        if not many and sql.lstrip().upper().startswith(DML):
            self.statements.append(self.explain(sql, params))
        return execute(sql, params, many, context)

    def explain(self, sql: str, params) -> Statement:
        # The raw psycopg connection: its cursors do not pass through this wrapper.
        raw = self.connection.connection
        with raw.cursor() as cursor:
            cursor.execute("SAVEPOINT scale_explain")
            try:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
                plan = cursor.fetchone()[0]
            finally:
                cursor.execute("ROLLBACK TO SAVEPOINT scale_explain")
                cursor.execute("RELEASE SAVEPOINT scale_explain")
        if isinstance(plan, str):
            plan = json.loads(plan)
        return analyse(plan[0], sql)


class _Rollback(Exception):
    pass


def measure(name: str, call, note: str = "", repeat: int = 2) -> QueryResult:
    """Run ``call`` under the Explainer in a transaction that is rolled back, then
    ``repeat`` times without it (the best is the wall time: the machine may be shared).
    Every run leaves the database as it was."""
    from django.db import connection, transaction

    explainer = Explainer(connection)
    with contextlib.suppress(_Rollback), transaction.atomic():
        with connection.execute_wrapper(explainer):
            call()
        raise _Rollback
    wall = math.inf
    for _ in range(repeat):
        with contextlib.suppress(_Rollback), transaction.atomic():
            started = time.perf_counter()
            call()
            wall = min(wall, (time.perf_counter() - started) * 1000)
            raise _Rollback
    return QueryResult(name, explainer.statements, wall, note)


def json_agg_floor(order_id: str) -> tuple[float, int]:
    """The same order's entitlements as one JSON document built by PostgreSQL (the floor of
    any GET): (best of two, in ms; bytes)."""
    from django.db import connection

    sql = """
        SELECT json_agg(json_strip_nulls(json_build_object(
            'entitlementId', e.entitlement_id, 'deliveryOrderId', o.delivery_order_id,
            'contractId', o.contract_id, 'productId', p.product_id,
            'startDate', o.start_date, 'activationUntilDate', o.activation_until_date,
            'expirationDate', o.expiration_date, 'endDate', e.end_date,
            'entitlementType', e.entitlement_type,
            'entitlementSpecification', e.specification, 'entitlementStatus', e.status,
            'urlStatuses', (
                SELECT json_agg(json_build_object('portal', pa.portal_id, 'urlStatus', u.status)
                                ORDER BY pa.portal_id)
                FROM entitlements_entitlementurlstatus u
                JOIN aanspraak_party pa ON pa.id = u.portal_id WHERE u.entitlement_id = e.id),
            'dateCreated', to_char(e.date_created AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
            'dateLastModified',
                to_char(e.date_last_modified AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
        )) ORDER BY e.id)::text
        FROM entitlements_entitlement e
        JOIN entitlements_deliveryorder o ON o.id = e.delivery_order_id
        JOIN aanspraak_product p ON p.id = o.product_id
        WHERE o.delivery_order_id = %s
    """
    best, size = math.inf, 0
    for _ in range(2):
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(sql, [order_id])
            size = len(cursor.fetchone()[0] or "")
        best = min(best, (time.perf_counter() - started) * 1000)
    return best, size


def hub_queries() -> list[tuple[str, object, str]]:
    """The hub's hot and periodic queries, as calls of its own selectors and services (so
    the statements explained are the ones the code runs today)."""
    from django.conf import settings
    from django.utils import timezone

    from aanspraak.choices import Scope
    from aanspraak.models import Party
    from confirmations.models import Confirmation
    from confirmations.selectors.outcome import confirmation_outcome
    from confirmations.selectors.pending import has_overdue_pending
    from confirmations.services.apply import apply_pending_batch
    from confirmations.services.receive import receive_confirmation
    from entitlements import outbox
    from entitlements.api.read import stream_json_array
    from entitlements.intake import receive_delivery_order
    from entitlements.models import DeliveryOrder, OutboundMessage
    from entitlements.selectors.deliveryorders import entitlement_json, visible_orders
    from entitlements.selectors.usage import hub_statuses, hub_usage
    from entitlements.services import enrollment, expiry

    seller = Party.objects.get(name="Boekhandel Oost")
    zuid = Party.objects.get(name="Portal Zuid")
    noord = Party.objects.get(name="Uitgeverij Noord")
    big = DeliveryOrder.objects.get(delivery_order_id=BIG_ORDER_ID)
    decided = (
        Confirmation.objects.filter(sender=zuid, message__isnull=False)
        .values_list("receive_id", flat=True)
        .first()
    )
    message = (
        OutboundMessage.objects.filter(recipient=zuid, state="delivered")
        .select_related("entitlement")
        .first()
    )

    def get_order():
        orders = visible_orders(seller, frozenset({Scope.ENTITLEMENT_SELLER}), BIG_ORDER_ID)
        for _chunk in stream_json_array(entitlement_json(orders)):
            pass

    def expiry_batch():
        size = int(getattr(settings, "HUB_EXPIRY_BATCH_SIZE", 5000))
        if "max_batches" in inspect.signature(expiry.expire_due).parameters:
            expiry.expire_due(batch_size=size, max_batches=1)
        else:  # the sweep before docs/performance.md "Scale": one batch over all orders
            expiry._expire_batch(timezone.localdate(), size)

    def receive():
        receive_confirmation(
            sender=zuid,
            client=None,
            body={"scale": True},
            reference_id=str(message.reference_id),
            receive_id=str(uuid.uuid4()),
            entitlement_id=str(message.entitlement.entitlement_id),
            product_id="9789001000011",
            processed_timestamp=timezone.now(),
            new_entitlement_status=None,
            url_portal="portal-zuid",
            new_url_status="processed",
        )

    def intake():
        from benchmarks.intake import body

        order = body(100, "DO-SCALE-INTAKE")
        receive_delivery_order(seller, order)
        receive_delivery_order(seller, order)  # the re-send: the repeat's reads

    def usage():
        figures = hub_usage(big.contract_id)
        for _ in hub_statuses(big.contract_id, noord.pk):
            pass
        return figures

    return [
        ("GET of the 50,000 order", get_order, f"{BIG_ORDER_ID}, read by its seller"),
        ("expiry sweep batch", expiry_batch, "one batch of HUB_EXPIRY_BATCH_SIZE"),
        (
            "dispatch claim (recipient with 50,000 due)",
            lambda: outbox.claim_due(zuid.pk),
            "Portal Zuid",
        ),
        ("apply claim (pending backlog)", lambda: apply_pending_batch(), "one batch"),
        ("enrollment lookup claim", lambda: enrollment.claim_due(), ""),
        ("usage reconciliation aggregate", usage, f"contract {big.contract_id}"),
        ("sweep: pending confirmations", lambda: has_overdue_pending(), ""),
        ("sweep: due outbound recipients", lambda: outbox.due_recipients(), ""),
        ("sweep: due enrollment lookups", lambda: enrollment.has_due(), ""),
        ("confirmation receive insert", receive, ""),
        ("confirmation outcome lookup", lambda: confirmation_outcome(zuid, decided), ""),
        ("intake (new order of 100, then its re-send)", intake, "COPY statements not shown"),
    ]


def run_queries() -> tuple[list[QueryResult], dict]:
    """Measure every hub query, and the GET against its json_agg floor."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        jit = cursor.fetchone()[0]
        counts = {}
        for table in BIG_TABLES:
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [table])
            row = cursor.fetchone()
            counts[table] = int(row[0]) if row else 0
    results = []
    for name, call, note in hub_queries():
        print(f"measuring {name} ...", flush=True)
        results.append(measure(name, call, note))
    floor_ms, floor_bytes = json_agg_floor(BIG_ORDER_ID)
    get = results[0]
    extra = {
        "jit": jit,
        "rows": counts,
        "floor_ms": floor_ms,
        "floor_bytes": floor_bytes,
        "get_ms": get.wall_ms,
        "get_over_floor": get.wall_ms / floor_ms if floor_ms else None,
    }
    return results, extra


# --- Reporting ----------------------------------------------------------------------------------


def table(results: list[QueryResult], extra: dict, shape: Shape, steps: dict) -> str:
    """The Markdown section of docs/performance.md."""
    rows = extra["rows"]
    lines = [
        START,
        f"## Scale: the hot and periodic queries at factor {shape.factor:g}",
        "",
        f"Measured by `python -m benchmarks.scale --factor {shape.factor:g}` "
        f"({time.strftime('%Y-%m-%d')}, PostgreSQL, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, jit={extra['jit']}): "
        f"{shape.orders:,} orders ({shape.big_orders} of {shape.big_size:,}), "
        f"{rows['entitlements_entitlement']:,} entitlements, "
        f"{rows['entitlements_entitlementurlstatus']:,} URL statuses, "
        f"{rows['entitlements_outboundmessage']:,} outbound messages, "
        f"{rows['confirmations_confirmation']:,} confirmations, "
        f"{rows['entitlements_statusevent']:,} status events; built in "
        f"{sum(steps.values()):.0f} s. Each statement the code runs is explained with "
        "`EXPLAIN (ANALYZE, BUFFERS)`; *read* counts the rows its scans of the big tables "
        "visited, *rows* the rows it returns or changes (for an aggregate, the rows it "
        "aggregates). Proportional: no Seq Scan of a big table and read ≤ 10 times rows + 2,000.",
        "",
        "| query | statement: plan (top nodes) | Seq Scan of a big table | rows | read | ms "
        "| JIT ms | verdict |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for result in results:
        for i, s in enumerate(result.statements):
            label = result.name if i == 0 else ""
            lines.append(
                f"| {label} | {s.top} | {', '.join(s.seq_scans) or '-'} | {s.rows_out:,} | "
                f"{s.rows_read:,} | {s.ms:.1f} | {s.jit_ms:.0f} | {s.verdict} |"
            )
    lines += [
        "",
        "| query | wall time (ms, without EXPLAIN) | verdict |",
        "|---|---:|---|",
    ]
    for result in results:
        lines.append(f"| {result.name} | {result.wall_ms:.1f} | {result.verdict} |")
    ratio = extra["get_over_floor"]
    lines += [
        "",
        f"GET of the {shape.big_size:,} order (selector and JSON streaming, in process): "
        f"{extra['get_ms']:.0f} ms; the same order's `json_agg` floor: "
        f"{extra['floor_ms']:.0f} ms ({extra['floor_bytes'] / 1e6:.1f} MB); ratio "
        f"{ratio:.2f}.",
        END,
    ]
    return "\n".join(lines) + "\n"


def write_doc(section: str) -> None:
    """Replace the scale section between its markers (appended when absent)."""
    text = DOC.read_text(encoding="utf-8")
    if START in text and END in text:
        before = text.split(START, 1)[0]
        after = text.split(END, 1)[1]
        text = before + section.rstrip("\n") + after
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOC.write_text(text, encoding="utf-8")


# --- Main ---------------------------------------------------------------------------------------


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn-db", required=True, help="name of the database to create")
    parser.add_argument("--factor", type=float, default=1.0, help="1.0: a national school start")
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    parser.add_argument("--write-docs", action="store_true", help="write docs/performance.md")
    parser.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the existing database (kept with --keep) after migrating it, no build",
    )
    args = parser.parse_args(argv)

    admin_url, database_url = server_urls(args.dsn_db)
    shape = Shape.of(args.factor)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    if not args.reuse:
        create_database(admin_url, args.dsn_db)
    try:
        setup_django(database_url)
        if args.reuse:
            steps = migrate_only()
        else:
            print(f"building factor {shape.factor:g} in {args.dsn_db}: {shape}", flush=True)
            steps = build(shape, log=lambda line: print(line, flush=True))
        print(f"built in {sum(steps.values()):.0f} s", flush=True)
        results, extra = run_queries()
        section = table(results, extra, shape, steps)
        print(section)
        if args.json:
            Path(args.json).write_text(
                json.dumps(
                    {
                        "shape": asdict(shape),
                        "steps": steps,
                        "extra": extra,
                        "queries": [{**asdict(r), "verdict": r.verdict} for r in results],
                    },
                    indent=1,
                    default=str,
                )
            )
        if args.write_docs:
            write_doc(section)
            print(f"written to {DOC.relative_to(ROOT)}")
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if args.keep:
            print(f"kept database {args.dsn_db}")
        else:
            drop_database(admin_url, args.dsn_db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
