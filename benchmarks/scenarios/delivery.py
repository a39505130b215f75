"""P6, outbound delivery: a 10,000-student order's 20,000 Entitlement requests sent by the
hub's workers, against floor clients sending the same recorded bytes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import httpx

from ..processes import ROOT, wait_for
from ..stack import LOG_DIR, Beat, Worker
from .bench import Bench, Figure, median, purge_queues
from .orders import put_order


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
