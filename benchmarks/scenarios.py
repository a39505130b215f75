"""The scenarios of ``make bench`` (P1–P6), each measured against its floor in the same run.

Each scenario function takes the running :class:`Bench` and returns :class:`Figure` rows
(the median of ``bench.runs`` runs) and the latency distributions for the plot. What each
floor is, and why it is the right one: docs/performance.md, "The scenarios and their
floors".
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx
import psycopg

from . import loadgen
from .processes import wait_for
from .stack import (
    LOG_DIR,
    ROOT,
    Beat,
    PartyServer,
    WebServer,
    Worker,
    cpu_seconds_by_command,
    cpu_seconds_of,
    cpu_shares,
)

PRODUCT = "9789001000011"
SCHOOL = "110A133"
PROCESSED_AT = "2026-09-01T08:00:00Z"


@dataclass
class Figure:
    """One row of the report. ``ratio`` is hub / floor; ``target`` says which way is good."""

    scenario: str
    figure: str
    hub: float
    floor: float | None
    unit: str
    target: str
    ok: bool

    @property
    def ratio(self) -> float | None:
        if self.floor in (None, 0):
            return None
        return self.hub / self.floor


@dataclass
class Bench:
    """Everything the scenarios share: the environment, the processes, the parties."""

    env: dict[str, str]
    dsn: str
    party: PartyServer
    hub: WebServer
    floor: WebServer
    tokens: dict[str, str]
    parties: dict[str, int]
    runs: int = 3
    quick: bool = False
    distributions: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def sql(self, query: str, params: tuple | dict = ()) -> list[tuple]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def seconds(self, full: float) -> float:
        """A load duration, shortened in ``--quick`` mode."""
        return max(5.0, full / 4) if self.quick else full

    def restart_hub(self) -> None:
        """A fresh hub (new gunicorn processes, so peak-memory figures start from zero)."""
        self.hub.stop()
        self.hub = WebServer("hub", "config.wsgi", self.env).start()


BENCH_REGISTRY = """
parties:
  - name: Bench Seller
    roles: [seller]
    endpoint:
      baseUrl: "{party}/seller"
      tokenUrl: "{party}/token"
      clientId: hub
      clientSecret: s
    clients:
      - {{clientId: bench-seller, clientSecret: {secret}, scopes: [eduv.entitlement.seller]}}
  - name: Bench Registry
    roles: [licensor]
    endpoint:
      baseUrl: "{party}/registry"
      tokenUrl: "{party}/token"
      clientId: hub
      clientSecret: s
    products: ["{product}"]
    clients:
      - clientId: bench-registry
        clientSecret: {secret}
        scopes: [eduv.entitlement.licensor, eduv.usage.licensor]
  - name: Bench Portal
    roles: [portal]
    portalId: bench-portal
    endpoint:
      baseUrl: "{party}/portal"
      tokenUrl: "{party}/token"
      clientId: hub
      clientSecret: s
    clients:
      - {{clientId: bench-portal, clientSecret: {secret}, scopes: [eduv.entitlement.portal]}}
schools:
  - organisationMasterIdentifier: "{school}"
    name: Bench College
    consents: [Bench Portal]
"""
CLIENT_SECRET = "bench-client-secret"
ROLES = {"seller": "bench-seller", "licensor": "bench-registry", "portal": "bench-portal"}


def registry_text(party_url: str) -> str:
    return BENCH_REGISTRY.format(
        party=party_url, secret=CLIENT_SECRET, product=PRODUCT, school=SCHOOL
    )


def fetch_tokens(hub_url: str) -> dict[str, str]:
    """An access token per role from the hub's own token endpoint."""
    tokens = {}
    for role, client_id in ROLES.items():
        answer = httpx.post(
            f"{hub_url}/oauth2/token/",
            data={"grant_type": "client_credentials"},
            auth=(client_id, CLIENT_SECRET),
            timeout=30,
        )
        answer.raise_for_status()
        tokens[role] = answer.json()["access_token"]
    return tokens


def order_body(students: int, order_id: str) -> dict:
    """A school-students delivery order for the bench school, one portal by consent."""
    tag = uuid.uuid4().hex[:8]
    return {
        "deliveryOrderReferenceId": str(uuid.uuid4()),
        "deliveryOrder": {
            "deliveryOrderId": order_id,
            "contractId": "C-bench",
            "buyer": {"school": {"organisationMasterIdentifier": SCHOOL}},
            "productId": PRODUCT,
            "deliveryType": "school-students",
            "deliverySpecification": {
                "students": [
                    {"userMasterIdentifier": f"https://ketenid.nl/201703/{tag}-{i:07d}"}
                    for i in range(students)
                ]
            },
            "startDate": "2026-08-01",
            "activationUntilDate": "2026-10-01",
            "expirationDate": "2027-07-31",
        },
    }


def put_order(bench: Bench, students: int, order_id: str) -> tuple[int, float]:
    """PUT /deliveryorders over HTTP; (the order's pk, seconds to the 202)."""
    raw = json.dumps(order_body(students, order_id)).encode()
    started = time.perf_counter()
    answer = httpx.put(
        f"{bench.hub.url}/deliveryorders",
        content=raw,
        headers={
            "Authorization": f"Bearer {bench.tokens['seller']}",
            "Content-Type": "application/json",
        },
        timeout=600,
    )
    elapsed = time.perf_counter() - started
    if answer.status_code != 202:
        raise RuntimeError(f"intake answered {answer.status_code}: {answer.text[:500]}")
    return order_pk(bench, order_id), elapsed


def order_pk(bench: Bench, order_id: str) -> int:
    return bench.sql(
        "SELECT id FROM entitlements_deliveryorder WHERE delivery_order_id = %s", (order_id,)
    )[0][0]


def settle_messages(bench: Bench, pk: int) -> None:
    """Mark an order's requests delivered, as dispatch would, so that no worker sends them
    during a scenario that measures something else."""
    bench.sql(
        "UPDATE entitlements_outboundmessage SET state = 'delivered', delivered_at = now(), "
        "attempt_count = 1 WHERE state = 'pending' AND (delivery_order_id = %(pk)s OR "
        "entitlement_id IN (SELECT id FROM entitlements_entitlement "
        "WHERE delivery_order_id = %(pk)s))",
        {"pk": pk},
    )


def purge_queues(bench: Bench) -> None:
    """Drop wake-ups queued while no worker ran (their work is settled or re-created)."""
    import redis

    redis.Redis.from_url(bench.env["CELERY_BROKER_URL"]).flushdb()


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- P1: the read --------------------------------------------------------------------------------


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
    bench.distributions["P1 GET 10,000 (hub)"] = _middle(hub_runs, 50).percentiles_ms
    bench.distributions["P1 json_agg floor"] = _middle(floor_runs, 50).percentiles_ms
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


def _middle(runs: list[loadgen.LoadResult], p: float) -> loadgen.LoadResult:
    """The run whose ``p`` percentile is the median one (for the plot)."""
    ordered = sorted(runs, key=lambda r: r.percentile(p))
    return ordered[len(ordered) // 2]


# --- P2: confirmations ---------------------------------------------------------------------------


def p2_confirmations(bench: Bench, pk: int) -> list[Figure]:
    """PUT /entitlements/confirmations at 32 connections, unique receive ids, against the
    web floor (json.loads + one ORM insert) under the same gunicorn configuration."""
    rows = bench.sql(
        "SELECT m.reference_id::text, e.entitlement_id::text "
        "FROM entitlements_outboundmessage m "
        "JOIN entitlements_entitlement e ON e.id = m.entitlement_id "
        "WHERE e.delivery_order_id = %s AND m.recipient_id = %s ORDER BY m.id",
        (pk, bench.parties["Bench Registry"]),
    )
    bodies = LOG_DIR / "p2-bodies.tsv"
    with bodies.open("w") as handle:
        for reference_id, entitlement_id in rows:
            prefix = (
                f'{{"entitlementReferenceId": "{reference_id}", "entitlementId": '
                f'"{entitlement_id}", "productId": "{PRODUCT}", "processedTimestamp": '
                f'"{PROCESSED_AT}", "newEntitlementStatus": "entitled", '
                f'"entitlementReceiveId": "'
            )
            handle.write(prefix + "\t" + '"}\n')
    headers = {
        "Authorization": f"Bearer {bench.tokens['licensor']}",
        "Content-Type": "application/json",
    }
    duration = bench.seconds(30)
    hub_runs, floor_runs, cpu, cpu_ms = [], [], {}, {}
    for run in range(bench.runs):
        before = cpu_seconds_by_command()
        hub_runs.append(
            loadgen.wrk(
                f"{bench.hub.url}/entitlements/confirmations",
                connections=32,
                duration_s=duration,
                headers=headers,
                unique_put_bodies=bodies,
                run_id=f"hub{run}-{uuid.uuid4().hex[:6]}",
            )
        )
        middle = cpu_seconds_by_command()
        cpu.setdefault("hub", cpu_shares(before, middle))
        # The figure that does not move with the machine's other load: CPU per request.
        cpu_ms.setdefault("hub", []).append(
            1000 * cpu_seconds_of(before, middle, "gunicorn", "postgres") / hub_runs[-1].requests
        )
        floor_runs.append(
            loadgen.wrk(
                f"{bench.floor.url}/entitlements/confirmations",
                connections=32,
                duration_s=duration,
                headers=headers,
                unique_put_bodies=bodies,
                run_id=f"floor{run}-{uuid.uuid4().hex[:6]}",
            )
        )
        after = cpu_seconds_by_command()
        cpu.setdefault("floor", cpu_shares(middle, after))
        cpu_ms.setdefault("floor", []).append(
            1000 * cpu_seconds_of(middle, after, "gunicorn", "postgres") / floor_runs[-1].requests
        )
    stored = bench.sql("SELECT count(*) FROM confirmations_confirmation")[0][0]
    answered = sum(r.requests - r.errors for r in hub_runs)
    bench.sql("TRUNCATE confirmations_confirmation, floor_web_floorconfirmation")
    hub_rps = median([r.rps for r in hub_runs])
    floor_rps = median([r.rps for r in floor_runs])
    hub_p99 = median([r.percentile(99) for r in hub_runs])
    floor_p99 = median([r.percentile(99) for r in floor_runs])
    errors = sum(r.errors for r in hub_runs)
    bench.distributions["P2 PUT confirmations (hub)"] = _middle(hub_runs, 99).percentiles_ms
    bench.distributions["P2 web floor"] = _middle(floor_runs, 99).percentiles_ms
    bench.notes.append(
        f"P2: {answered:,} confirmations answered 202 by the hub, {stored:,} stored "
        "(durable before the 202: none answered may be missing). Where the CPU went "
        f"during the hub's first run: {cpu['hub']}; during the floor's: {cpu['floor']}. "
        f"CPU per request (web and database processes): hub "
        f"{median(cpu_ms['hub']):.2f} ms, floor {median(cpu_ms['floor']):.2f} ms. "
        "Runs in order (hub/floor req/s): "
        + ", ".join(f"{h.rps:,.0f}/{f.rps:,.0f}" for h, f in zip(hub_runs, floor_runs, strict=True))
        + "."
    )
    return [
        Figure("P2", "PUT req/s at 32 connections", hub_rps, floor_rps, "req/s",
               "≥ 0.80× floor", hub_rps >= 0.8 * floor_rps),
        Figure("P2", "PUT p99", hub_p99, floor_p99, "ms", "< 50 ms", hub_p99 < 50),
        Figure("P2", "PUT errors", errors, None, "", "0", errors == 0),
        # In-flight requests when wrk stops are stored but not counted: stored >= answered.
        Figure("P2", "202s not stored", max(0, answered - stored), None, "", "0",
               stored >= answered),
    ]  # fmt: skip


# --- P6: outbound delivery -----------------------------------------------------------------------


def p6_dispatch(bench: Bench) -> list[Figure]:
    """A 10,000-student order's 20,000 Entitlement requests from the 202 to all delivered, by
    the hub's workers, against two floor clients (one per recipient) sending the same bytes
    with the same concurrency and keep-alive."""
    students = 2_500 if bench.quick else 10_000
    purge_queues(bench)
    worker = Worker(bench.env, concurrency=2).start()
    beat = Beat(bench.env).start()
    hub_rates, floor_rates = [], []
    recorded = LOG_DIR / "p6-recorded.jsonl"
    try:
        for run in range(bench.runs):
            bench.party.reset()
            if run == 0:
                httpx.post(f"{bench.party.url}/_record", timeout=5)
            order_id = f"DO-P6-{run}-{uuid.uuid4().hex[:6]}"
            pk, _ = put_order(bench, students, order_id)
            started = time.perf_counter()
            expected = 2 * students
            wait_for(
                lambda pk=pk, expected=expected: _delivered(bench, pk) >= expected,
                timeout=600,
                what=f"{expected} requests delivered",
                interval=0.1,
            )
            hub_rates.append(expected / (time.perf_counter() - started))
            if run == 0:
                recorded.write_bytes(httpx.get(f"{bench.party.url}/_recorded", timeout=60).content)
    finally:
        beat.stop()
        worker.stop()
    by_recipient: dict[str, list[str]] = {}
    for line in recorded.read_text().splitlines():
        item = json.loads(line)
        if "/entitlements" in item["path"] and not item["path"].startswith("/seller"):
            by_recipient.setdefault(item["path"].split("/")[1], []).append(line)
    files = []
    for recipient, lines in sorted(by_recipient.items()):
        path = LOG_DIR / f"p6-{recipient}.jsonl"
        path.write_text("\n".join(lines) + "\n")
        files.append(path)
    total = sum(len(lines) for lines in by_recipient.values())
    concurrency = int(bench.env.get("HUB_OUTBOUND_CONCURRENCY", "16"))
    for _ in range(bench.runs):
        started = time.perf_counter()
        clients = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.floor_client",
                    "--base-url",
                    bench.party.url,
                    "--requests",
                    str(path),
                    "--concurrency",
                    str(concurrency),
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                env=bench.env,
            )
            for path in files
        ]
        for client in clients:
            output, _ = client.communicate(timeout=600)
            if json.loads(output)["failed"]:
                raise RuntimeError("the floor client's requests failed")
        floor_rates.append(total / (time.perf_counter() - started))
    hub_rate, floor_rate = median(hub_rates), median(floor_rates)
    bench.notes.append(
        f"P6: {students:,} students, {2 * students:,} requests per run; the floor sent the "
        f"{total:,} recorded bodies of the first run, {concurrency} in flight per recipient."
    )
    return [
        Figure("P6", "requests delivered per second", hub_rate, floor_rate, "/s",
               "≥ 0.5× floor", hub_rate >= 0.5 * floor_rate),
    ]  # fmt: skip


def _delivered(bench: Bench, pk: int) -> int:
    return bench.sql(
        "SELECT count(*) FROM entitlements_outboundmessage m "
        "JOIN entitlements_entitlement e ON e.id = m.entitlement_id "
        "WHERE e.delivery_order_id = %s AND m.state = 'delivered'",
        (pk,),
    )[0][0]


# --- P3: applying confirmations ------------------------------------------------------------------


def p3_apply(bench: Bench) -> list[Figure]:
    """50,000 pending confirmations for 10,000 entitlements applied by 1 and by 2 worker
    processes, against one bulk UPDATE plus one multi-row INSERT of the same rows."""
    from benchmarks import apply_workload

    students = 2_500 if bench.quick else 10_000
    orders: dict[int, list[int]] = {1: [], 2: []}
    for concurrency in orders:
        for run in range(bench.runs):
            pk = _order_in_process(f"DO-P3-c{concurrency}-{run}-{uuid.uuid4().hex[:6]}", students)
            # Delivered as dispatch records it (portal URL statuses initialized, with events).
            apply_workload.mark_requests_delivered(pk)
            orders[concurrency].append(pk)
    purge_queues(bench)
    rates: dict[int, list[float]] = {1: [], 2: []}
    counts = []
    for concurrency, pks in orders.items():
        worker = Worker(bench.env, concurrency=concurrency).start()
        try:
            for pk in pks:
                inserted = apply_workload.make_pending_confirmations(pk)
                counts.append(inserted)
                started = time.perf_counter()
                _wake_confirmation_workers()
                wait_for(
                    lambda: _pending(bench) == 0,
                    timeout=900,
                    what="every confirmation decided",
                    interval=0.1,
                )
                rates[concurrency].append(inserted / (time.perf_counter() - started))
        finally:
            worker.stop()
    # The floor writes as many status-event rows as the worker decided confirmations.
    floor_rates = [
        median(counts) / apply_workload.raw_sql_floor(orders[2][-1], int(median(counts)))
        for _ in range(bench.runs)
    ]
    one, two, floor = median(rates[1]), median(rates[2]), median(floor_rates)
    bench.notes.append(
        f"P3: {median(counts):,.0f} pending confirmations per run for {students:,} "
        "entitlements; the floor's rate counts the rows it writes per second."
    )
    return [
        Figure("P3", "decided per second, 1 process", one, floor, "/s", "-", True),
        Figure("P3", "decided per second, 2 processes", two, floor, "/s",
               "≥ 2,000/s and ≥ 0.10× floor", two >= 2000 and two >= 0.1 * floor),
    ]  # fmt: skip


def _order_in_process(order_id: str, students: int) -> int:
    """An order stored by the intake service itself (no HTTP: set-up, not measured)."""
    from aanspraak.models import Party
    from entitlements.intake import receive_delivery_order

    seller = Party.objects.get(name="Bench Seller")
    result = receive_delivery_order(seller, order_body(students, order_id))
    from entitlements.models import DeliveryOrder

    del result
    return DeliveryOrder.objects.get(seller=seller, delivery_order_id=order_id).pk


def _wake_confirmation_workers() -> None:
    from confirmations.services.wake import wake_workers

    if not wake_workers():
        raise RuntimeError("could not wake the confirmation workers")


def _pending(bench: Bench) -> int:
    return bench.sql("SELECT count(*) FROM confirmations_confirmation WHERE state = 'pending'")[0][
        0
    ]


# --- P5: end to end ------------------------------------------------------------------------------


POLL_SECONDS = 0.1
POLL_ORDERS = 4


def p5_end_to_end(bench: Bench) -> list[Figure]:
    """500 confirmations per second for 60 s, each for a different entitlement; how long
    from each 202 until its new status shows in GET /entitlements/deliveryorder/{id}."""
    rate = 500
    seconds = bench.seconds(60)
    # Orders of 1,000: the observer reads one or two orders a round instead of falling
    # behind a stream of small ones.
    per_order = 200 if bench.quick else 1_000
    total = int(rate * seconds)
    order_count = total // per_order
    orders = []
    for index in range(order_count):
        order_id = f"DO-P5-{index:04d}-{uuid.uuid4().hex[:6]}"
        pk = _order_in_process(order_id, per_order)
        settle_messages(bench, pk)
        orders.append((order_id, pk))
    rows = bench.sql(
        "SELECT e.delivery_order_id, e.entitlement_id::text, m.reference_id::text "
        "FROM entitlements_outboundmessage m "
        "JOIN entitlements_entitlement e ON e.id = m.entitlement_id "
        "WHERE e.delivery_order_id = ANY(%s) AND m.recipient_id = %s "
        "ORDER BY e.delivery_order_id, e.id",
        ([pk for _, pk in orders], bench.parties["Bench Registry"]),
    )
    order_ids = {pk: order_id for order_id, pk in orders}
    token = bench.tokens["licensor"]
    host, port = "127.0.0.1", bench.hub.port
    requests, targets = [], []
    for index, (pk, entitlement_id, reference_id) in enumerate(rows):
        body = json.dumps(
            {
                "entitlementReferenceId": reference_id,
                "entitlementReceiveId": f"p5-{index}-{uuid.uuid4().hex[:8]}",
                "entitlementId": entitlement_id,
                "productId": PRODUCT,
                "processedTimestamp": PROCESSED_AT,
                "newEntitlementStatus": "entitled",
            }
        ).encode()
        requests.append(
            loadgen.http_request(host, port, "/entitlements/confirmations", token, body)
        )
        targets.append((order_ids[pk], entitlement_id))

    purge_queues(bench)
    workers = Worker(bench.env, concurrency=2).start()
    beat = Beat(bench.env).start()
    answered: dict[int, float] = {}
    seen: dict[int, float] = {}
    index_of = {target: i for i, target in enumerate(targets)}
    by_order: dict[str, set[int]] = {}
    lock = threading.Lock()
    sending_done = threading.Event()

    def on_answer(index: int, status: int, at: float) -> None:
        if status == 202:
            with lock:
                answered[index] = at
                by_order.setdefault(targets[index][0], set()).add(index)

    def poll() -> None:
        # Every POLL_SECONDS, read the orders with answered-but-unseen confirmations, oldest
        # first: an observer with think time, so that it does not take the machine from
        # the hub it observes (the latency it reports is late by at most one round).
        headers = {"Authorization": f"Bearer {bench.tokens['seller']}"}
        with httpx.Client(base_url=bench.hub.url, headers=headers, timeout=30) as client:
            while True:
                round_started = time.perf_counter()
                with lock:
                    waiting = [order for order, indexes in by_order.items() if indexes]
                if not waiting and sending_done.is_set():
                    return
                for order_id in waiting[:POLL_ORDERS]:
                    try:
                        documents = client.get(f"/entitlements/deliveryorder/{order_id}").json()
                    except (httpx.HTTPError, ValueError):
                        continue  # an overloaded hub: try again, the deadline bounds it
                    now = time.perf_counter()
                    with lock:
                        for doc in documents:
                            if doc["entitlementStatus"] != "entitled":
                                continue
                            index = index_of.get((order_id, doc["entitlementId"]))
                            if index in by_order.get(order_id, ()):
                                seen[index] = now
                                by_order[order_id].discard(index)
                if time.perf_counter() > deadline:
                    return
                time.sleep(max(0.0, round_started + POLL_SECONDS - time.perf_counter()))

    try:
        # Pollers stop once every answered confirmation was seen, or 30 s after the sending.
        deadline = time.perf_counter() + 10 * seconds + 30
        pollers = [threading.Thread(target=poll)]
        for poller in pollers:
            poller.start()
        cpu_before = cpu_seconds_by_command()
        errors, took = asyncio.run(loadgen.paced_requests(host, port, requests, rate, on_answer))
        cpu = cpu_shares(cpu_before, cpu_seconds_by_command())
        deadline = time.perf_counter() + 30
        sending_done.set()
        for poller in pollers:
            poller.join()
        # Lost: answered 202 but not applied once the workers are done.
        wait_for(
            lambda: _pending(bench) == 0, timeout=120, what="no confirmation pending", interval=0.05
        )
        applied = bench.sql(
            "SELECT count(*) FROM confirmations_confirmation "
            "WHERE receive_id LIKE 'p5-%%' AND state = 'applied'"
        )[0][0]
        # Where the time went: from the row's insert to the worker's decision, in the database.
        apply_lag = bench.sql(
            "SELECT percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY "
            "extract(epoch FROM decided_at - received_at) * 1000) "
            "FROM confirmations_confirmation WHERE receive_id LIKE 'p5-%%'"
        )[0][0]
    finally:
        sending_done.set()
        beat.stop()
        workers.stop()
    latencies = [(seen[i] - answered[i]) * 1000 for i in seen]
    result = loadgen.latencies_to_result(latencies, took, errors)
    lost = max(0, len(answered) - applied)
    unseen = len(answered) - len(seen)
    bench.distributions["P5 202 to visible in GET"] = result.percentiles_ms
    bench.notes.append(
        f"P5: {len(requests):,} confirmations sent in {took:.1f} s "
        f"({len(requests) / took:.0f}/s), {len(answered):,} answered 202; a poller read the "
        f"(at most {POLL_ORDERS}) orders of {per_order} entitlements with unseen "
        f"confirmations every {POLL_SECONDS * 1000:.0f} ms. Insert to decided by the worker: "
        f"p50 {apply_lag[0]:,.0f} ms, p95 {apply_lag[1]:,.0f} ms. Where the CPU went while "
        f"sending: {cpu}."
    )
    return [
        Figure("P5", "202 to visible, p95", result.percentile(95), None, "ms", "< 1,000 ms",
               result.percentile(95) < 1000),
        # Open loop: a hub that cannot take the rate makes the sending take longer than planned.
        Figure("P5", "sent per second", len(requests) / took, None, "/s",
               f"≥ {0.95 * rate:,.0f}/s", len(requests) / took >= 0.95 * rate),
        Figure("P5", "202s never applied (lost)", lost, None, "", "0", lost == 0),
        Figure("P5", "202s not seen in the GET within 30 s", unseen, None, "", "0", unseen == 0),
        Figure("P5", "send errors", errors, None, "", "0", errors == 0),
    ]  # fmt: skip


# --- P4: intake ----------------------------------------------------------------------------------


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


def scale_out_web(bench: Bench, pk: int) -> list[Figure]:
    """P2 again with twice the web processes for hub and floor (one run): what a second set
    of web processes adds on this machine, and where the CPU goes then."""
    workers = 2 * int(bench.env.get("WEB_CONCURRENCY") or os.cpu_count() or 2)
    bench.hub.stop()
    bench.floor.stop()
    bench.hub = WebServer("hub", "config.wsgi", bench.env, workers=workers).start()
    bench.floor = WebServer(
        "floor", "benchmarks.floor_web.wsgi", bench.floor.env, workers=workers
    ).start()
    runs, bench.runs = bench.runs, 1
    try:
        rows = p2_confirmations(bench, pk)
    finally:
        bench.runs = runs
        # Back to the configuration every other scenario measures.
        bench.hub.stop()
        bench.floor.stop()
        bench.hub = WebServer("hub", "config.wsgi", bench.env).start()
        bench.floor = WebServer("floor", "benchmarks.floor_web.wsgi", bench.floor.env).start()
    bench.notes[-1] = bench.notes[-1].replace(
        "P2:", f"Scale-out (P2 with {workers} web processes):"
    )
    return [
        Figure("scale-out", f"PUT req/s, {workers} web processes", rows[0].hub, rows[0].floor,
               "req/s", "–", True),
        Figure("scale-out", f"PUT p99, {workers} web processes", rows[1].hub, rows[1].floor,
               "ms", "–", True),
    ]  # fmt: skip


SCENARIOS = ("P1", "P2", "SCALE-OUT", "P6", "P3", "P5", "P4")
