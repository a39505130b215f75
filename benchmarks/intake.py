"""Benchmark of intake: how long a delivery order of N students takes to store.

Runs on PostgreSQL in a database of its own (``<name of DATABASE_URL's database>_bench``,
created and dropped by the script), so it never touches real or test data:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/aanspraak python benchmarks/intake.py
    python benchmarks/intake.py --students 100000 --write-docs

It measures validation alone, the whole ``PUT /deliveryorders`` request (JSON parsing,
validation, the transaction with COPY) and, for comparison, the same store with Django's
``bulk_create`` instead of COPY (the path SQLite takes). ``--write-docs`` replaces the
intake section of docs/performance.md with the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
START, END = "<!-- intake-benchmark:start -->", "<!-- intake-benchmark:end -->"

from benchmarks.databases import (  # noqa: E402 - after the path is set for a script run
    bench_database_url,
    drop_database,
    postgres_url,
    recreate_database,
)


def body(n: int, order_id: str) -> dict:
    return {
        "deliveryOrderReferenceId": str(uuid.uuid4()),
        "deliveryOrder": {
            "deliveryOrderId": order_id,
            "contractId": "C-bench",
            "buyer": {"school": {"organisationMasterIdentifier": "110A133"}},
            "productId": "9789001000011",
            "deliveryType": "school-students",
            "deliverySpecification": {
                "students": [
                    {"userMasterIdentifier": f"https://ketenid.nl/201703/{uuid.uuid4().hex}{i}"}
                    for i in range(n)
                ]
            },
            "startDate": "2026-08-01",
            "activationUntilDate": "2026-10-01",
            "expirationDate": "2027-07-31",
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    url = postgres_url()
    if url is None:
        return 2
    bench_url, admin_url, name = bench_database_url(url)
    recreate_database(admin_url, name)
    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")
    try:
        import django

        django.setup()
        return run(args, name, admin_url)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            drop_database(admin_url, name)


def run(args, name: str, admin_url: str) -> int:
    import json

    from django.core.management import call_command
    from django.db import connection, transaction
    from rest_framework.test import APIClient

    from aanspraak.db import bulk
    from aanspraak.models import Party
    from aanspraak.services.registry import load_registry, read_registry_file
    from entitlements.intake import parse_delivery_order, receive_delivery_order
    from entitlements.models import Entitlement, OutboundMessage

    call_command("migrate", verbosity=0)
    load_registry(read_registry_file(ROOT / "aanspraak/simulation/demo-registry.yaml"))
    seller = Party.objects.get(name="Demo Boekhandel")
    n = args.students
    figures: list[tuple[str, float]] = []

    payload = body(n, "DO-bench-validate")
    started = time.perf_counter()
    parse_delivery_order(payload)
    figures.append(("validation only (no database)", time.perf_counter() - started))

    # The whole request, through Django and DRF, with an access token of the demo seller.
    from benchmarks.tokens import issue_token

    token = issue_token(seller.clients.get(), scope="eduv.entitlement.seller")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    raw = json.dumps(body(n, "DO-bench-http"))
    started = time.perf_counter()
    response = client.generic("PUT", "/deliveryorders", raw, content_type="application/json")
    elapsed = time.perf_counter() - started
    assert response.status_code == 202, response.content[:500]
    figures.append((f"PUT /deliveryorders, {len(raw) / 1e6:.1f} MB JSON (COPY)", elapsed))

    started = time.perf_counter()
    receive_delivery_order(seller, body(n, "DO-bench-service"))
    figures.append(("service only: validation + store (COPY)", time.perf_counter() - started))

    # The bulk_create path (what SQLite uses), on PostgreSQL, for comparison.
    original_vendor = connection.vendor
    started = time.perf_counter()
    try:
        connection.vendor = "bulk_create"
        receive_delivery_order(seller, body(n, "DO-bench-bulk-create"))
    finally:
        connection.vendor = original_vendor
    figures.append(
        ("service only: validation + store (bulk_create)", time.perf_counter() - started)
    )

    with transaction.atomic():
        entitlements = Entitlement.objects.count()
        messages = OutboundMessage.objects.count()
    assert entitlements == 3 * n, entitlements
    server = connection.cursor().connection.info.server_version
    rows_per_order = f"{n:,} entitlements, {n:,} URL statuses, {2 * n + 1:,} messages"
    lines = [
        f"Order of {n:,} students (one portal): {rows_per_order} per order.",
        "",
        "| step | seconds |",
        "|---|---:|",
        *[f"| {label} | {seconds:.2f} |" for label, seconds in figures],
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()} "
        f"({os.cpu_count()} cores), Python {platform.python_version()}, "
        f"PostgreSQL {server // 10000}.{server % 10000}, database `{name}` "
        f"(`python benchmarks/intake.py --students {n}`). "
        f"{messages:,} messages stored in all. bulk_create batch size {bulk.BULK_BATCH_SIZE}.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write_docs:
        write_docs(text)
    return 0


def write_docs(text: str) -> None:
    path = ROOT / "docs" / "performance.md"
    current = path.read_text() if path.exists() else "# Performance\n"
    section = f"{START}\n{text}\n{END}"
    if START in current and END in current:
        before, rest = current.split(START, 1)
        _, after = rest.split(END, 1)
        current = before + section + after
    else:
        current = current.rstrip("\n") + "\n\n## Intake of delivery orders\n\n" + section + "\n"
    path.write_text(current)
    print(f"wrote {path}")


if __name__ == "__main__":
    raise SystemExit(main())
