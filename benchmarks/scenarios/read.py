"""P1, the read: ``GET /entitlements/deliveryorder/{id}`` of a 10,000-entitlement order
against PostgreSQL's ``json_agg`` of the same rows."""

from __future__ import annotations

import httpx

from .. import loadgen
from .bench import Bench, Figure, median, median_run


def p1_read(bench: Bench, pk: int, order_id: str) -> list[Figure]:
    """GET of a 10,000-entitlement order at 4 connections against PostgreSQL's json_agg of
    the same rows from a flat table, fetched as text at the same concurrency."""
    bench.sql("DROP TABLE IF EXISTS bench_flat")
    bench.sql(
        """
        CREATE TABLE bench_flat AS
        SELECT e.delivery_order_id AS order_pk, e.id AS pk,
               e.entitlement_id::text AS "entitlementId",
               o.delivery_order_id AS "deliveryOrderId", o.contract_id AS "contractId",
               p.product_id AS "productId", o.start_date AS "startDate",
               o.activation_until_date AS "activationUntilDate",
               o.expiration_date AS "expirationDate", e.end_date AS "endDate",
               e.entitlement_type AS "entitlementType",
               e.specification AS "entitlementSpecification",
               e.status AS "entitlementStatus",
               (SELECT json_agg(json_build_object('portal', pp.portal_id, 'urlStatus', u.status))
                  FROM entitlements_entitlementurlstatus u
                  JOIN aanspraak_party pp ON pp.id = u.portal_id
                 WHERE u.entitlement_id = e.id) AS "urlStatuses",
               to_char(e.date_created AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                 AS "dateCreated",
               to_char(e.date_last_modified AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                 AS "dateLastModified"
          FROM entitlements_entitlement e
          JOIN entitlements_deliveryorder o ON o.id = e.delivery_order_id
          JOIN aanspraak_product p ON p.id = o.product_id
         WHERE e.delivery_order_id = %s
        """,
        (pk,),
    )
    bench.sql("CREATE INDEX ON bench_flat (order_pk, pk)")
    bench.sql("ANALYZE bench_flat")
    floor_sql = (
        'SELECT json_agg(t)::text FROM (SELECT "entitlementId", "deliveryOrderId", '
        '"contractId", "productId", "startDate", "activationUntilDate", "expirationDate", '
        '"endDate", "entitlementType", "entitlementSpecification", "entitlementStatus", '
        '"urlStatuses", "dateCreated", "dateLastModified" FROM bench_flat '
        "WHERE order_pk = %s ORDER BY pk) t"
    )
    url = f"{bench.hub.url}/entitlements/deliveryorder/{order_id}"
    headers = {"Authorization": f"Bearer {bench.tokens['seller']}"}
    answer = httpx.get(url, headers=headers, timeout=120)
    answer.raise_for_status()
    documents = answer.json()
    if len(documents) != 10_000 and not bench.quick:
        raise RuntimeError(f"the GET returned {len(documents)} entitlements, not 10,000")
    duration = bench.seconds(15)
    hub_runs, floor_runs = [], []
    for _ in range(bench.runs):
        hub_runs.append(
            loadgen.wrk(url, connections=4, duration_s=duration, headers=headers, timeout_s=30)
        )
        floor_runs.append(
            loadgen.concurrent_queries(
                bench.dsn, floor_sql, (pk,), connections=4, duration_s=duration
            )
        )
    hub_p50 = median([r.percentile(50) for r in hub_runs])
    floor_p50 = median([r.percentile(50) for r in floor_runs])
    hub_errors = sum(r.errors for r in hub_runs)
    bench.distributions["P1 GET 10,000 (hub)"] = median_run(hub_runs, 50).percentiles_ms
    bench.distributions["P1 json_agg floor"] = median_run(floor_runs, 50).percentiles_ms
    size = len(answer.content)
    bench.notes.append(
        f"P1: {len(documents):,} entitlements, {size / 1e6:.1f} MB per GET; "
        f"json_agg floor {floor_runs[0].bytes / max(1, floor_runs[0].requests) / 1e6:.1f} MB; "
        f"hub {median([r.rps for r in hub_runs]):.1f} req/s, floor "
        f"{median([r.rps for r in floor_runs]):.1f} queries/s."
    )
    return [
        Figure("P1", "GET p50 at 4 connections", hub_p50, floor_p50, "ms", "≤ 1.5× floor",
               hub_p50 <= 1.5 * floor_p50),
        Figure("P1", "GET errors", hub_errors, None, "", "0", hub_errors == 0),
    ]  # fmt: skip
