"""Confirmations: P2 (``PUT /entitlements/confirmations`` against the web floor), the same
with twice the web processes (scale-out), and P5 (from each 202 until the new status shows
in the GET, at 500 confirmations a second)."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass

import httpx
import orjson

from .. import loadgen
from ..processes import wait_for
from ..stack import (
    LOG_DIR,
    Beat,
    WebServer,
    Worker,
    cpu_seconds_by_command,
    cpu_seconds_of,
    cpu_shares,
    machine_seconds,
    machine_use,
)
from .bench import Bench, Figure, median, median_run, pending_confirmations, purge_queues
from .orders import order_in_process, settle_messages
from .parties import PROCESSED_AT, PRODUCT


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
    bench.distributions["P2 PUT confirmations (hub)"] = median_run(hub_runs, 99).percentiles_ms
    bench.distributions["P2 web floor"] = median_run(floor_runs, 99).percentiles_ms
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


POLL_SECONDS = 0.1
POLL_ORDERS = 4


@dataclass
class P5Run:
    """What one P5 run measured."""

    visible: loadgen.LoadResult  # 202 to visible in the GET, per confirmation seen
    answer_ms: tuple[float, float]  # the 202's p50 and p99, from the request's planned time
    sent: int
    answered: int
    lost: int
    unseen: int
    errors: int
    took: float
    orders_read: int
    bytes_read: int
    apply_lag_ms: tuple[float, float]
    cpu: str
    machine: str
    hub_ms: float
    observer_ms: float

    @property
    def rate(self) -> float:
        return self.sent / self.took


def p5_end_to_end(bench: Bench) -> list[Figure]:
    """500 confirmations per second for 60 s, each for a different entitlement; how long
    from each 202 until its new status shows in GET /entitlements/deliveryorder/{id}.
    ``bench.runs`` runs, each on orders of its own; each figure is the median of the runs
    (losses, unseen confirmations and errors: their sum)."""
    rate = 500
    return p5_summary(bench, [_p5_run(bench, run, rate) for run in range(bench.runs)], rate)


def p5_summary(bench: Bench, runs: list[P5Run], rate: int) -> list[Figure]:
    """P5's figures from its runs (medians; losses, unseen and errors summed), its note and
    its plotted distribution (the run with the median p95)."""
    visible = [r.visible for r in runs]
    bench.distributions["P5 202 to visible in GET"] = median_run(visible, 95).percentiles_ms
    p95 = median([v.percentile(95) for v in visible])
    sent_rate = median([r.rate for r in runs])
    lost, unseen, errors = (
        sum(getattr(r, name) for r in runs) for name in ("lost", "unseen", "errors")
    )
    first = runs[0]
    per_order = _p5_order_size(bench)
    bench.notes.append(
        f"P5: {len(runs)} run{'s' if len(runs) > 1 else ''} of {first.sent:,} confirmations, "
        "in order: "
        + "; ".join(
            f"{r.rate:.0f}/s sent, 202 to visible p95 {r.visible.percentile(95):,.0f} ms, "
            f"the 202 itself (from its planned sending) p50 {r.answer_ms[0]:,.0f} ms and "
            f"p99 {r.answer_ms[1]:,.0f} ms, hub CPU {r.hub_ms:.2f} ms a confirmation"
            for r in runs
        )
        + f". A poller read the (at most {POLL_ORDERS}) orders of {per_order} entitlements "
        f"with unseen confirmations every {POLL_SECONDS * 1000:.0f} ms "
        f"({first.orders_read / first.took:.1f} orders, "
        f"{first.bytes_read / first.took / 1e6:.1f} MB a second while sending, first run). "
        f"Insert to decided by the worker (first run): p50 {first.apply_lag_ms[0]:,.0f} ms, "
        f"p95 {first.apply_lag_ms[1]:,.0f} ms. Where the CPU went while sending (first run): "
        f"{first.cpu}; the machine {first.machine}. CPU per confirmation (median of the runs): "
        f"hub {median([r.hub_ms for r in runs]):.2f} ms, load generator and poller "
        f"{median([r.observer_ms for r in runs]):.2f} ms."
    )
    return [
        Figure("P5", "202 to visible, p95", p95, None, "ms", "< 1,000 ms", p95 < 1000),
        # Open loop: a hub that cannot take the rate makes the sending take longer than planned.
        Figure("P5", "sent per second", sent_rate, None, "/s",
               f"≥ {0.95 * rate:,.0f}/s", sent_rate >= 0.95 * rate),
        Figure("P5", "202s never applied (lost)", lost, None, "", "0", lost == 0),
        Figure("P5", "202s not seen in the GET within 30 s", unseen, None, "", "0", unseen == 0),
        Figure("P5", "send errors", errors, None, "", "0", errors == 0),
    ]  # fmt: skip


def _p5_order_size(bench: Bench) -> int:
    # Orders of 1,000: the observer reads one or two orders a round instead of falling
    # behind a stream of small ones.
    return 200 if bench.quick else 1_000


def _p5_run(bench: Bench, run: int, rate: int) -> P5Run:
    """One P5 run: its own orders, workers and beat; sends, observes, counts."""
    seconds = bench.seconds(60)
    per_order = _p5_order_size(bench)
    total = int(rate * seconds)
    order_count = total // per_order
    orders = []
    for index in range(order_count):
        order_id = f"DO-P5-{run}-{index:04d}-{uuid.uuid4().hex[:6]}"
        pk = order_in_process(order_id, per_order)
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
                "entitlementReceiveId": f"p5-{run}-{index}-{uuid.uuid4().hex[:8]}",
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

    # The 30,000 prepared requests and their index stay to the end: out of the collector's
    # sight, or every collection the poller's parsing sets off walks them all.
    gc.freeze()
    purge_queues(bench)
    workers = Worker(bench.env, concurrency=2).start()
    beat = Beat(bench.env).start()
    answered: dict[int, float] = {}
    answer_ms: list[float] = []  # each 202, from the moment the pacing planned to send it
    seen: dict[int, float] = {}
    index_of = {target: i for i, target in enumerate(targets)}
    by_order: dict[str, set[int]] = {}
    lock = threading.Lock()
    sending_done = threading.Event()
    reads = {"orders": 0, "bytes": 0}  # what the poller read, for the notes

    def on_answer(index: int, status: int, at: float) -> None:
        if status == 202:
            answer_ms.append((at - sending_from - index / rate) * 1000)
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
                        # orjson: the stdlib parser of these 600 kB answers took a sixth of
                        # a core from the hub it observes.
                        answer = client.get(f"/entitlements/deliveryorder/{order_id}")
                        documents = orjson.loads(answer.content)
                        reads["orders"] += 1
                        reads["bytes"] += len(answer.content)
                    except (httpx.HTTPError, orjson.JSONDecodeError):
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
        cpu_before, machine_before = cpu_seconds_by_command(), machine_seconds()
        own_before = time.process_time()  # this process: the load generator and the poller
        sending_from = time.perf_counter()
        errors, took = asyncio.run(loadgen.paced_requests(host, port, requests, rate, on_answer))
        cpu_after, machine = (
            cpu_seconds_by_command(),
            machine_use(machine_before, machine_seconds()),
        )
        cpu = cpu_shares(cpu_before, cpu_after)
        read_while_sending = dict(reads)
        # CPU per confirmation sent: the hub's processes, and the load generator with the
        # poller (this process, all its threads), which share the machine with it.
        hub_ms = (
            1000
            * cpu_seconds_of(
                cpu_before, cpu_after, "gunicorn", "postgres", "celery", "redis-server"
            )
            / len(requests)
        )
        observer_ms = 1000 * (time.process_time() - own_before) / len(requests)
        deadline = time.perf_counter() + 30
        sending_done.set()
        for poller in pollers:
            poller.join()
        # Lost: answered 202 but not applied once the workers are done.
        wait_for(
            lambda: pending_confirmations(bench) == 0,
            timeout=120,
            what="no confirmation pending",
            interval=0.05,
        )
        applied = bench.sql(
            "SELECT count(*) FROM confirmations_confirmation "
            "WHERE receive_id LIKE %s AND state = 'applied'",
            (f"p5-{run}-%",),
        )[0][0]
        # Where the time went: from the row's insert to the worker's decision, in the database.
        apply_lag = bench.sql(
            "SELECT percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY "
            "extract(epoch FROM decided_at - received_at) * 1000) "
            "FROM confirmations_confirmation WHERE receive_id LIKE %s",
            (f"p5-{run}-%",),
        )[0][0]
    finally:
        sending_done.set()
        beat.stop()
        workers.stop()
        gc.unfreeze()
    latencies = [(seen[i] - answered[i]) * 1000 for i in seen]
    answers = loadgen.latencies_to_result(answer_ms, took, errors)
    return P5Run(
        visible=loadgen.latencies_to_result(latencies, took, errors),
        answer_ms=(answers.percentile(50), answers.percentile(99)),
        sent=len(requests),
        answered=len(answered),
        lost=max(0, len(answered) - applied),
        unseen=len(answered) - len(seen),
        errors=errors,
        took=took,
        orders_read=read_while_sending["orders"],
        bytes_read=read_while_sending["bytes"],
        apply_lag_ms=tuple(apply_lag),
        cpu=cpu,
        machine=machine,
        hub_ms=hub_ms,
        observer_ms=observer_ms,
    )
