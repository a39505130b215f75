"""Workload of the confirmation worker (scenario P3): 50,000 pending confirmations for an
order of 10,000 students, and the raw SQL floor to compare the worker with.

Library use (Django set up, PostgreSQL):

    order_pk = make_order(10_000)              # through the intake service
    make_pending_confirmations(order_pk)       # -> 50_000 (requests marked delivered first)
    seconds = raw_sql_floor(order_pk)          # leaves the data as it found it

Stand-alone (a database of its own: the name of DATABASE_URL's, plus ``_workload``; kept, so
that a worker can be pointed at it):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/aanspraak_apply \\
        python benchmarks/apply_workload.py [--students 10000] [--apply]

Per entitlement (docs/confirmations.md), in arrival order interleaved across entitlements:
the registry's ``entitled`` (applied; stale for one in ten whose ``licensed`` has an earlier
processedTimestamp), the portal's ``initialized`` (duplicate: the request was delivered) and,
about 2,000 entitlements later, ``processed`` (applied), the registry's ``licensed`` at a
random later moment (applied), and one repeat: ``entitled`` or ``processed`` again under a new
entitlementReceiveId (duplicate), or for one in a hundred a wrong productId (rejected).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PER_ENTITLEMENT = 5
TABLES = (
    "entitlements_entitlement",
    "entitlements_entitlementurlstatus",
    "entitlements_outboundmessage",
    "entitlements_statusevent",
    "confirmations_confirmation",
)

# One INSERT ... SELECT: five rows per entitlement of the order, ordered (and so numbered and
# stamped received_at) by an arrival key that interleaves the registry's and the portal's
# streams. %(order)s is the delivery order's pk.
CONFIRMATIONS_SQL = """
WITH ent AS (
    SELECT e.id, e.entitlement_id::text AS eid, row_number() OVER (ORDER BY e.id) AS n,
           p.product_id, lm.reference_id::text AS lref, lm.recipient_id AS licensor,
           pm.reference_id::text AS pref, pm.recipient_id AS portal, party.portal_id
    FROM entitlements_entitlement e
    JOIN entitlements_deliveryorder o ON o.id = e.delivery_order_id
    JOIN aanspraak_product p ON p.id = o.product_id
    JOIN entitlements_outboundmessage lm ON lm.entitlement_id = e.id
         AND lm.proposed_entitlement_status = 'created'
    JOIN entitlements_outboundmessage pm ON pm.entitlement_id = e.id
         AND pm.proposed_url_status = 'initialized'
    JOIN aanspraak_party party ON party.id = pm.recipient_id
    WHERE e.delivery_order_id = %(order)s
),
rows AS (
    -- (kind of row, arrival key, processedTimestamp offset in seconds)
    SELECT ent.*, r.what, r.arrival, r.offset_s
    FROM ent, LATERAL (VALUES
        ('entitled', n::float8, n * 0.01),
        ('initialized', n + 0.3, n * 0.01 + 1),
        ('processed', n + 2000.5, n * 0.01 + 3600),
        ('licensed', n + random() * 10000,
            CASE WHEN n %% 10 = 3 THEN n * 0.01 - 1 ELSE 7200 + random() * 3600 END),
        (CASE WHEN n %% 100 = 0 THEN 'wrong-product'
              WHEN n %% 2 = 0 THEN 'entitled' ELSE 'processed' END,
            n + 50 + random() * 100, n * 0.01 + 10)
    ) AS r(what, arrival, offset_s)
),
shaped AS (
    SELECT *,
        what IN ('initialized', 'processed') AS by_portal,
        'rcv-' || md5(random()::text || clock_timestamp()::text) AS rid,
        timestamptz '2026-09-01 08:00:00+00' + offset_s * interval '1 second' AS at,
        CASE WHEN what = 'wrong-product' THEN '9789000000000' ELSE product_id END AS pid,
        CASE WHEN what = 'wrong-product' THEN 'entitled' ELSE what END AS status
    FROM rows
)
INSERT INTO confirmations_confirmation (
    sender_id, kind, receive_id, reference_id, entitlement_ref, product_id,
    processed_timestamp, new_entitlement_status, url_portal, new_url_status, body, state,
    reason, received_at)
SELECT
    CASE WHEN by_portal THEN portal ELSE licensor END, 'confirmation', rid,
    CASE WHEN by_portal THEN pref ELSE lref END, eid, pid, at,
    CASE WHEN by_portal THEN NULL ELSE status END,
    CASE WHEN by_portal THEN portal_id END,
    CASE WHEN by_portal THEN status END,
    jsonb_build_object(
        'entitlementReferenceId', CASE WHEN by_portal THEN pref ELSE lref END,
        'entitlementReceiveId', rid, 'entitlementId', eid, 'productId', pid,
        'processedTimestamp', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
    || CASE WHEN by_portal
            THEN jsonb_build_object('newUrlStatus',
                                    jsonb_build_object('portal', portal_id, 'urlStatus', status))
            ELSE jsonb_build_object('newEntitlementStatus', status) END,
    'pending', '', now() + arrival * interval '1 millisecond'
FROM shaped
ORDER BY arrival
"""


def make_order(students: int = 10_000) -> int:
    """A delivery order of ``students`` school-students (one portal) through the intake
    service, as the demo seller of ``aanspraak/simulation/demo-registry.yaml`` (loaded if missing);
    returns its pk."""
    from aanspraak.models import Party
    from aanspraak.services.registry import load_registry, read_registry_file
    from entitlements.intake import receive_delivery_order
    from entitlements.models import DeliveryOrder

    if not Party.objects.filter(name="Demo Boekhandel").exists():
        load_registry(read_registry_file(ROOT / "aanspraak/simulation/demo-registry.yaml"))
    seller = Party.objects.get(name="Demo Boekhandel")
    order_id = f"DO-apply-{uuid.uuid4().hex[:8]}"
    people = [
        {"userMasterIdentifier": f"https://ketenid.nl/201703/{uuid.uuid4().hex}{i}"}
        for i in range(students)
    ]
    receive_delivery_order(
        seller,
        {
            "deliveryOrderReferenceId": str(uuid.uuid4()),
            "deliveryOrder": {
                "deliveryOrderId": order_id,
                "contractId": "C-apply",
                "buyer": {"school": {"organisationMasterIdentifier": "110A133"}},
                "productId": "9789001000011",
                "deliveryType": "school-students",
                "deliverySpecification": {"students": people},
                "startDate": "2026-08-01",
                "activationUntilDate": "2026-10-01",
                "expirationDate": "2027-07-31",
            },
        },
    )
    return DeliveryOrder.objects.get(seller=seller, delivery_order_id=order_id).pk


def mark_requests_delivered(order_pk: int) -> int:
    """Mark the order's pending Entitlement requests delivered, as dispatch records a 2xx
    (portal requests: URL status uninitialized → initialized with its event, through
    ``entitlements.outbox.mark_initialized``); the number marked."""
    from django.db import transaction
    from django.utils import timezone

    from entitlements.models import OutboundMessage
    from entitlements.outbox import mark_initialized
    from entitlements.statuses import MessageKind, MessageState, UrlStatus

    now = timezone.now()
    with transaction.atomic():
        messages = list(
            OutboundMessage.objects.select_for_update()
            .filter(
                entitlement__delivery_order_id=order_pk,
                kind=MessageKind.ENTITLEMENT_REQUEST,
                state=MessageState.PENDING,
            )
            .order_by("id")
        )
        OutboundMessage.objects.filter(pk__in=[m.pk for m in messages]).update(
            state=MessageState.DELIVERED, delivered_at=now, next_attempt_at=None
        )
        mark_initialized(
            [m for m in messages if m.proposed_url_status == UrlStatus.INITIALIZED], now
        )
    return len(messages)


def make_pending_confirmations(order_pk: int) -> int:
    """Insert ``PER_ENTITLEMENT`` (5) pending confirmations per entitlement of the order, by
    SQL (the rows ``PUT /entitlements/confirmations`` would store); its requests are marked
    delivered first where they are not yet. Returns how many were inserted. PostgreSQL."""
    from django.db import connection, transaction

    mark_requests_delivered(order_pk)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(CONFIRMATIONS_SQL, {"order": order_pk})
        inserted = cursor.rowcount
    with connection.cursor() as cursor:
        # Statistics as a live database has them (autovacuum may not have run yet).
        for table in TABLES:
            cursor.execute(f"ANALYZE {table}")
    return inserted


def raw_sql_floor(order_pk: int | None = None, events: int = 50_000) -> float:
    """Seconds that one bulk UPDATE of the order's entitlements (status, status_changed_at,
    date_last_modified) plus one multi-row INSERT of ``events`` status-event rows take through
    psycopg, in a transaction that is rolled back (nothing changes). Default order: the
    newest. Compare the worker's confirmations per second with ``events / seconds``."""
    import psycopg
    from django.db import connection

    from entitlements.models import DeliveryOrder

    if order_pk is None:
        order_pk = DeliveryOrder.objects.order_by("-pk").values_list("pk", flat=True).first()
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with psycopg.connect(**params) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT e.id, u.portal_id FROM entitlements_entitlement e "
            "JOIN entitlements_entitlementurlstatus u ON u.entitlement_id = e.id "
            "WHERE e.delivery_order_id = %s ORDER BY e.id",
            (order_pk,),
        )
        rows = cur.fetchall()
        ids = [r[0] for r in rows]
        portal = rows[0][1]
        started = time.perf_counter()
        cur.execute(
            "UPDATE entitlements_entitlement e SET status = v.status, "
            "status_changed_at = v.at, date_last_modified = now() "
            "FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[]) AS v(id, status, at) "
            "WHERE e.id = v.id",
            (ids, ["licensed"] * len(ids), ["2026-09-01T10:00:00Z"] * len(ids)),
        )
        steps = [("entitled", None), ("licensed", None), ("processed", portal)]
        shaped = [(ids[i % len(ids)], *steps[i % len(steps)]) for i in range(events)]
        cur.execute(
            "INSERT INTO entitlements_statusevent (entitlement_id, portal_id, from_status, "
            "to_status, cause, cause_pk, cause_ref, effective_at, recorded_at) "
            "SELECT e, p, 'created', t, 'confirmation', c, r, a, now() FROM unnest("
            "%s::bigint[], %s::bigint[], %s::text[], %s::bigint[], %s::text[], "
            "%s::timestamptz[]) AS v(e, p, t, c, r, a)",
            (
                [s[0] for s in shaped],
                [s[2] for s in shaped],
                [s[1] for s in shaped],
                list(range(events)),
                [f"rcv-{i}" for i in range(events)],
                ["2026-09-01T10:00:00Z"] * events,
            ),
        )
        elapsed = time.perf_counter() - started
        conn.rollback()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=10_000)
    parser.add_argument("--apply", action="store_true", help="apply in-process and time it")
    args = parser.parse_args()
    from benchmarks.databases import bench_database_url, postgres_url, recreate_database

    url = postgres_url()
    if url is None:
        return 2
    bench_url, admin_url, name = bench_database_url(url, "_workload")
    recreate_database(admin_url, name)
    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    order_pk = make_order(args.students)
    inserted = make_pending_confirmations(order_pk)
    floor = raw_sql_floor(order_pk, inserted)
    print(f"database {name}: order {order_pk}, {inserted:,} pending confirmations")
    print(f"raw SQL floor: {floor:.3f} s = {inserted / floor:,.0f} rows/s")
    if args.apply:
        from confirmations.services.apply import apply_all_pending

        started = time.perf_counter()
        decided = apply_all_pending()
        elapsed = time.perf_counter() - started
        print(f"applied in-process: {decided:,} in {elapsed:.2f} s = {decided / elapsed:,.0f}/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
