"""Benchmark of ``GET /entitlements/deliveryorder/{id}`` for one very large order.

Builds, in a database of its own, a delivery order of N entitlements (default 100,000) with
two portals' URL statuses (bulk inserts), then serves it through the full Django stack (token
check, middleware, streaming view) in a fresh process and measures:

- the response time (best of three full reads of the streamed body),
- the peak Python memory of one read (tracemalloc) and the growth of the process's peak RSS,
- on PostgreSQL, for comparison, the same rows as one document built by the database
  (``json_agg``), fetched into Python in one piece.

Prints the figures and writes them to ``docs/performance.md`` (its own section).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/aanspraak \
        python benchmarks/read_deliveryorder.py

The database used is ``<name>_bench`` next to the one in DATABASE_URL (dropped and created);
without DATABASE_URL a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
START = "<!-- benchmark:read_deliveryorder:start -->"
END = "<!-- benchmark:read_deliveryorder:end -->"
ORDER_ID = "DO-BENCH"


def bench_database_url() -> str:
    """A database of its own: ``<name>_bench`` on the same PostgreSQL server (recreated), or a
    temporary SQLite file."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        return "sqlite:///" + str(Path(tempfile.mkdtemp()) / "bench.sqlite3")
    parts = urlsplit(url)
    name = parts.path.lstrip("/") + "_bench"
    import psycopg

    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path="/" + name))


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def build(n: int) -> None:
    """Schema, registry and one order of ``n`` entitlements (bulk inserts)."""
    from types import SimpleNamespace

    from django.core.management import call_command

    from aanspraak.models import Party, Product, School
    from aanspraak.services.registry import load_registry
    from tests.support.factories import REGISTRY, make_order

    call_command("migrate", verbosity=0)
    load_registry(REGISTRY)
    parties = {p.name: p for p in Party.objects.all()}
    registry = SimpleNamespace(
        seller=parties["Boekhandel Oost"],
        portal=parties["Portal Zuid"],
        school=School.objects.get(organisation_master_identifier="110A133"),
        product=Product.objects.get(product_id="9789001000011"),
    )
    make_order(
        registry,
        n,
        delivery_order_id=ORDER_ID,
        portals=[parties["Portal Zuid"], parties["Portal Klei"]],
        with_messages=False,
    )


def _token() -> str:
    from aanspraak.models import Client
    from benchmarks.tokens import issue_token

    return issue_token(Client.objects.get(client_id="oost-seller"), token="bench-token")


def _read_once(http, token: str) -> tuple[int, int]:
    """One full read of the streamed answer: (bytes, entitlements)."""
    response = http.get(
        f"/entitlements/deliveryorder/{ORDER_ID}", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 200, response.status_code
    size = count = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        count += chunk.count(b'"entitlementId"')
    response.close()
    return size, count


def serve() -> dict:
    """Measure serving (run in a fresh process, after ``build``)."""
    from django.db import connection
    from django.test import Client as HttpClient
    from django.test.utils import CaptureQueriesContext

    token = _token()
    http = HttpClient()
    _read_once(http, token)  # warm up: imports, connection, caches

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(3):
        started = time.perf_counter()
        size, count = _read_once(http, token)
        times.append(time.perf_counter() - started)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    tracemalloc.start()
    _read_once(http, token)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    with CaptureQueriesContext(connection) as queries:
        _read_once(http, token)

    result = {
        "vendor": connection.vendor,
        "entitlements": count,
        "bytes": size,
        "seconds": min(times),
        "py_peak_bytes": peak,
        "rss_growth_kib": rss_after - rss_before,
        "rss_peak_kib": rss_after,
        "queries": len(queries.captured_queries),
    }
    if connection.vendor == "postgresql":
        result |= json_agg_figures()
    return result


def json_agg_figures() -> dict:
    """The same entitlements as one JSON document built by PostgreSQL (json_agg), fetched
    whole: the time, and the Python memory it takes to hold it."""
    from django.db import connection

    from aanspraak.models import Party, Product
    from entitlements.models import DeliveryOrder, Entitlement, EntitlementUrlStatus

    # Table names come from the models, the order id is a parameter.
    sql = f"""
        SELECT json_agg(json_strip_nulls(json_build_object(
            'entitlementId', e.entitlement_id,
            'deliveryOrderId', o.delivery_order_id,
            'contractId', o.contract_id,
            'productId', p.product_id,
            'startDate', o.start_date,
            'activationUntilDate', o.activation_until_date,
            'expirationDate', o.expiration_date,
            'endDate', e.end_date,
            'entitlementType', e.entitlement_type,
            'entitlementSpecification', e.specification,
            'entitlementStatus', e.status,
            'urlStatuses', (
                SELECT json_agg(json_build_object('portal', pa.portal_id, 'urlStatus', u.status)
                                ORDER BY pa.portal_id)
                FROM {EntitlementUrlStatus._meta.db_table} u
                JOIN {Party._meta.db_table} pa ON pa.id = u.portal_id
                WHERE u.entitlement_id = e.id),
            'dateCreated', to_char(e.date_created AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
            'dateLastModified',
                to_char(e.date_last_modified AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
        )) ORDER BY e.id)::text
        FROM {Entitlement._meta.db_table} e
        JOIN {DeliveryOrder._meta.db_table} o ON o.id = e.delivery_order_id
        JOIN {Product._meta.db_table} p ON p.id = o.product_id
        WHERE o.delivery_order_id = %s
    """  # noqa: S608
    times = []
    for _ in range(3):
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(sql, [ORDER_ID])
            document = cursor.fetchone()[0]
        times.append(time.perf_counter() - started)
    size = len(document.encode())
    del document
    tracemalloc.start()
    with connection.cursor() as cursor:
        cursor.execute(sql, [ORDER_ID])
        document = cursor.fetchone()[0]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    count = len(json.loads(document))
    return {
        "agg_seconds": min(times),
        "agg_bytes": size,
        "agg_py_peak_bytes": peak,
        "agg_entitlements": count,
    }


def report(result: dict, build_seconds: float) -> str:
    mib = 1024 * 1024
    lines = [
        START,
        "## Reading a delivery order of "
        f"{result['entitlements']:,} entitlements (`GET /entitlements/deliveryorder/{{id}}`)",
        "",
        "Measured by `benchmarks/read_deliveryorder.py` "
        f"({time.strftime('%Y-%m-%d')}, {result['vendor']}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; in-process Django test client, so no network): one order, "
        "two portals' URL statuses per entitlement, read by its seller.",
        "",
        "| what | figure |",
        "|---|---|",
        f"| building the order (bulk inserts) | {build_seconds:.1f} s |",
        f"| response time, full streamed body (best of 3) | {result['seconds']:.2f} s |",
        f"| response size | {result['bytes'] / mib:.1f} MiB |",
        f"| SQL queries for the request | {result['queries']} |",
        f"| peak Python memory while serving (tracemalloc) | "
        f"{result['py_peak_bytes'] / mib:.1f} MiB |",
        f"| growth of the process's peak RSS over 3 reads | "
        f"{result['rss_growth_kib'] / 1024:.1f} MiB |",
        f"| peak RSS of the serving process | {result['rss_peak_kib'] / 1024:.0f} MiB |",
    ]
    if "agg_seconds" in result:
        lines += [
            f"| PostgreSQL `json_agg` of the same rows, fetched whole (best of 3) | "
            f"{result['agg_seconds']:.2f} s |",
            f"| its size | {result['agg_bytes'] / mib:.1f} MiB |",
            f"| Python memory to hold it (tracemalloc) | "
            f"{result['agg_py_peak_bytes'] / mib:.1f} MiB |",
        ]
    lines += [
        "",
        "The view never holds the order: it reads rows as tuples in chunks of 2,000 through "
        "server-side cursors and writes the JSON array in batches of 500 entitlements, so its "
        "memory stays at a few megabytes whatever the size of the order (the tracemalloc "
        "figure), while a document built whole, by the database or in Python, grows with "
        "the order. The query count is the same for 1 or 100,000 entitlements.",
        END,
    ]
    return "\n".join(lines) + "\n"


def write_doc(section: str) -> None:
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Performance\n\n"
    if START in text and END in text:
        before = text.split(START, 1)[0]
        after = text.split(END, 1)[1].lstrip("\n")
        text = before + section + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOC.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100_000, help="entitlements in the order")
    parser.add_argument("--serve", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    if args.serve:  # the measuring child process
        setup_django(args.serve)
        print(json.dumps(serve()))
        return

    database_url = bench_database_url()
    print(f"building an order of {args.n:,} entitlements in {database_url.split('@')[-1]} ...")
    env = dict(os.environ, DATABASE_URL=database_url)
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; sys.argv=['x']; "
            f"sys.path.insert(0, {str(ROOT)!r}); "
            "from benchmarks.read_deliveryorder import setup_django, build; "
            f"setup_django({database_url!r}); build({args.n})",
        ],
        env=env,
        check=True,
        cwd=ROOT,
    )
    build_seconds = time.perf_counter() - started
    print("serving it in a fresh process ...")
    out = subprocess.run(
        [sys.executable, str(Path(__file__)), "--serve", database_url],
        env=env,
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    section = report(result, build_seconds)
    print(section)
    if not args.no_write:
        write_doc(section)
        print(f"written to {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
