"""P4, intake: one 100,000-student order through ``PUT /deliveryorders`` against a raw COPY of
the same rows, and the web process's memory while it takes that order and streams it back."""

from __future__ import annotations

import time
import uuid

import httpx
import psycopg

from .bench import Bench, Figure, median, purge_queues
from .orders import put_order


def p4_intake(bench: Bench) -> list[Figure]:
    """One 100,000-student order through PUT /deliveryorders, time to 202, against a raw COPY
    of the same rows into the same tables; the web process's peak memory, and its growth
    while it streams that order back."""
    students = 20_000 if bench.quick else 100_000
    purge_queues(bench)
    bench.restart_hub()
    hub_times, floor_times = [], []
    last_pk = None
    for run in range(bench.runs):
        last_pk, seconds = put_order(bench, students, f"DO-P4-{run}-{uuid.uuid4().hex[:6]}")
        hub_times.append(seconds)
        floor_times.append(_copy_floor(bench, last_pk))
    peak_intake = bench.hub.peak_rss_mib()
    # The same order streamed back: memory must not grow with it.
    order_id = bench.sql(
        "SELECT delivery_order_id FROM entitlements_deliveryorder WHERE id = %s", (last_pk,)
    )[0][0]
    bench.restart_hub()
    seller = {"Authorization": f"Bearer {bench.tokens['seller']}"}
    httpx.get(f"{bench.hub.url}/entitlements/deliveryorder/unknown", headers=seller, timeout=30)
    before = bench.hub.peak_rss_mib()
    size = 0
    with httpx.stream(
        "GET",
        f"{bench.hub.url}/entitlements/deliveryorder/{order_id}",
        headers={"Authorization": f"Bearer {bench.tokens['seller']}"},
        timeout=600,
    ) as answer:
        for chunk in answer.iter_bytes():
            size += len(chunk)
    after = bench.hub.peak_rss_mib()
    purge_queues(bench)
    hub_time, floor_time = median(hub_times), median(floor_times)
    bench.notes.append(
        f"P4: {students:,} students: {students:,} entitlements, {students:,} URL statuses, "
        f"{2 * students + 1:,} messages per order; the floor COPYs the same rows (new keys) "
        f"in one transaction, foreign-key checks at commit included. The GET of that order "
        f"streamed {size / 1e6:.0f} MB; the web process's peak RSS went from {before:.0f} to "
        f"{after:.0f} MiB."
    )
    return [
        Figure("P4", "time to 202", hub_time, floor_time, "s", "≤ 5× floor",
               hub_time <= 5 * floor_time),
        Figure("P4", "peak RSS of the web process", peak_intake, None, "MiB", "< 300 MiB",
               peak_intake < 300),
        Figure("P4", "RSS growth streaming it back", after - before, None, "MiB", "< 50 MiB",
               after - before < 50),
    ]  # fmt: skip


def _copy_floor(bench: Bench, pk: int) -> float:
    """Seconds for a raw COPY of an order's rows (new keys) into the same tables, committed.

    The rows are read out first (not timed) as COPY text, with primary keys moved into a
    reserved range and unique values made new; then one transaction COPYs them in."""
    with psycopg.connect(bench.dsn) as conn:
        (emin, emax), = conn.execute(
            "SELECT min(id), max(id) FROM entitlements_entitlement WHERE delivery_order_id = %s",
            (pk,),
        ).fetchall()  # fmt: skip
        span = emax - emin + 1

        def reserve(table: str, count: int) -> int:
            sequence = conn.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table,)).fetchone()
            return conn.execute(
                "SELECT setval(%s, nextval(%s) + %s) - %s + 1", (sequence[0],) * 2 + (count,) * 2
            ).fetchone()[0]

        new_order = conn.execute(
            "INSERT INTO entitlements_deliveryorder (delivery_order_id, contract_id, "
            "delivery_type, start_date, activation_until_date, expiration_date, end_date, "
            "status, created_at, updated_at, product_id, school_id, seller_id) "
            "SELECT 'floor-' || gen_random_uuid(), contract_id, delivery_type, start_date, "
            "activation_until_date, expiration_date, end_date, status, now(), now(), "
            "product_id, school_id, seller_id FROM entitlements_deliveryorder WHERE id = %s "
            "RETURNING id",
            (pk,),
        ).fetchone()[0]
        conn.commit()
        ebase = reserve("entitlements_entitlement", span)
        (umin, umax), = conn.execute(
            "SELECT min(id), max(id) FROM entitlements_entitlementurlstatus "
            "WHERE entitlement_id BETWEEN %s AND %s", (emin, emax)
        ).fetchall()  # fmt: skip
        ubase = reserve("entitlements_entitlementurlstatus", umax - umin + 1)
        (mmin, mmax), = conn.execute(
            "SELECT min(id), max(id) FROM entitlements_outboundmessage "
            "WHERE entitlement_id BETWEEN %s AND %s OR delivery_order_id = %s", (emin, emax, pk)
        ).fetchall()  # fmt: skip
        mbase = reserve("entitlements_outboundmessage", mmax - mmin + 1)
        conn.commit()
        shift = {"emin": emin, "emax": emax, "ebase": ebase, "umin": umin, "ubase": ubase,
                 "mmin": mmin, "mbase": mbase, "order": pk, "new_order": new_order}  # fmt: skip
        entitlement_cols = (
            "id, entitlement_id, entitlement_type, status, end_date, user_master_identifier, "
            "user_ids, enrollment_id, activation_code, specification, status_changed_at, "
            "date_created, date_last_modified, delivery_order_id"
        )
        url_cols = "id, status, status_changed_at, date_last_modified, entitlement_id, portal_id"
        message_cols = (
            "id, reference_id, kind, proposed_entitlement_status, proposed_url_status, "
            "proposed_end_date, body, state, attempt_count, next_attempt_at, last_error, "
            "created_at, delivered_at, delivery_order_id, entitlement_id, intake_id, "
            "recipient_id, queued_at"
        )
        sources = {
            ("entitlements_entitlement", entitlement_cols): (
                "SELECT id - %(emin)s + %(ebase)s, gen_random_uuid(), entitlement_type, status, "
                "end_date, user_master_identifier, user_ids, enrollment_id, activation_code, "
                "specification, status_changed_at, date_created, date_last_modified, "
                "%(new_order)s FROM entitlements_entitlement WHERE delivery_order_id = %(order)s"
            ),
            ("entitlements_entitlementurlstatus", url_cols): (
                "SELECT id - %(umin)s + %(ubase)s, status, status_changed_at, "
                "date_last_modified, entitlement_id - %(emin)s + %(ebase)s, portal_id "
                "FROM entitlements_entitlementurlstatus "
                "WHERE entitlement_id BETWEEN %(emin)s AND %(emax)s"
            ),
            ("entitlements_outboundmessage", message_cols): (
                "SELECT id - %(mmin)s + %(mbase)s, gen_random_uuid(), kind, "
                "proposed_entitlement_status, proposed_url_status, proposed_end_date, body, "
                "state, attempt_count, next_attempt_at, last_error, created_at, delivered_at, "
                "CASE WHEN delivery_order_id IS NULL THEN NULL ELSE %(new_order)s END, "
                "entitlement_id - %(emin)s + %(ebase)s, intake_id, recipient_id, queued_at "
                "FROM entitlements_outboundmessage "
                "WHERE entitlement_id BETWEEN %(emin)s AND %(emax)s "
                "OR delivery_order_id = %(order)s"
            ),
        }
        buffers = {}
        with conn.cursor() as cursor:
            for key, select in sources.items():
                data = bytearray()
                query = psycopg.ClientCursor(conn).mogrify(select, shift)
                with cursor.copy(f"COPY ({query}) TO STDOUT") as copy:
                    for block in copy:
                        data += block
                buffers[key] = bytes(data)
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cursor:
            for (table, columns), data in buffers.items():
                with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    copy.write(data)
        conn.commit()
        return time.perf_counter() - started
