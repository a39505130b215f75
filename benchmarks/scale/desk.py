"""The support desk's pages on a national school start: each search kind and the big pages,
timed through Django's test client on a database built by ``python -m benchmarks.scale
--keep`` (docs/support-desk.md, "At national size").

    python -m benchmarks.scale --dsn-db aanspraak_scale_bench --keep     # build it once
    python -m benchmarks.scale.desk --dsn-db aanspraak_scale_bench --write-docs

Each page is fetched once to warm the caches, then three times; the median is reported with
the number of SQL queries the page ran. The database is left as it was but for a staff user.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

from .database import ROOT, server_urls, setup_django

DOC = ROOT / "docs" / "support-desk.md"
START, END = "<!-- benchmark:desk:start -->", "<!-- benchmark:desk:end -->"
RUNS = 3


@dataclass
class Page:
    """One page of the desk, timed."""

    what: str
    url: str
    ms: float = 0.0
    queries: int = 0
    status: int = 0


def _one(sql: str, params: tuple = ()) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        raise SystemExit(f"the database holds no row for: {sql}")
    return str(row[0])


def _pages() -> list[Page]:
    """The searches and pages to time, with real values of the built database."""
    from urllib.parse import quote

    big_order = _one(
        "SELECT o.delivery_order_id FROM entitlements_deliveryorder o "
        "JOIN entitlements_entitlement e ON e.delivery_order_id = o.id "
        "GROUP BY o.id ORDER BY count(*) DESC LIMIT 1"
    )
    order_pk = _one(
        "SELECT id FROM entitlements_deliveryorder WHERE delivery_order_id = %s", (big_order,)
    )
    entitlement_pk = _one(
        "SELECT e.id FROM entitlements_entitlement e JOIN confirmations_confirmation c "
        "ON c.entitlement_id = e.id ORDER BY e.id DESC LIMIT 1"
    )
    terms = {
        "ECK iD": _one(
            "SELECT user_master_identifier FROM entitlements_entitlement "
            "WHERE user_master_identifier IS NOT NULL ORDER BY id DESC LIMIT 1"
        ),
        "entitlementId": _one(
            "SELECT entitlement_id FROM entitlements_entitlement ORDER BY id DESC LIMIT 1"
        ),
        "entitlementReferenceId": _one(
            "SELECT reference_id FROM entitlements_outboundmessage "
            "WHERE entitlement_id IS NOT NULL ORDER BY id DESC LIMIT 1"
        ),
        "entitlementReceiveId": _one(
            "SELECT receive_id FROM confirmations_confirmation ORDER BY id DESC LIMIT 1"
        ),
        "deliveryOrderId (50,000 entitlements)": big_order,
        "productId": _one("SELECT product_id FROM aanspraak_product ORDER BY id LIMIT 1"),
        "school identifier": _one(
            "SELECT organisation_master_identifier FROM aanspraak_school ORDER BY id LIMIT 1"
        ),
        "a term that matches nothing": "no-such-thing-anywhere",
    }
    base = "/admin/entitlements/entitlement/"
    pages = [Page(f"search: {k}", f"{base}?q={quote(v, safe='')}") for k, v in terms.items()]
    pages += [
        Page("entitlements, unfiltered", base),
        Page("outbound messages, unfiltered", "/admin/entitlements/outboundmessage/"),
        Page("status events, unfiltered", "/admin/entitlements/statusevent/"),
        Page("URL statuses, unfiltered", "/admin/entitlements/entitlementurlstatus/"),
        Page("confirmations, unfiltered", "/admin/confirmations/confirmation/"),
        Page("entitlements filtered by status", f"{base}?status__exact=entitled"),
        Page(
            "delivery order page (50,000 entitlements, chart)",
            f"/admin/entitlements/deliveryorder/{order_pk}/change/",
        ),
        Page("an entitlement's timeline", f"{base}{entitlement_pk}/timeline/"),
    ]
    return pages


def measure() -> list[Page]:
    """Time every page as a superuser (created if missing)."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    user, _ = get_user_model().objects.get_or_create(
        username="bench-desk", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    pages = _pages()
    for page in pages:
        client.get(page.url)  # warm
        times = []
        for _ in range(RUNS):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(page.url)
                times.append((time.perf_counter() - started) * 1000)
        page.ms, page.queries, page.status = (
            statistics.median(times),
            len(queries),
            response.status_code,
        )
    return pages


def table(pages: list[Page], description: str) -> str:
    """The figures as the Markdown section of docs/support-desk.md."""
    lines = [
        START,
        description,
        "",
        "| page | median | SQL queries | HTTP |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {p.what} | {p.ms:,.0f} ms | {p.queries} | {p.status} |" for p in pages]
    return "\n".join([*lines, END])


def main(argv: list[str] | None = None) -> int:
    """Measure the desk on the kept scale database named on the command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale.desk")
    parser.add_argument("--dsn-db", required=True, help="a database built with --keep")
    parser.add_argument("--write-docs", action="store_true", help="write docs/support-desk.md")
    args = parser.parse_args(argv)
    _, database_url = server_urls(args.dsn_db)
    setup_django(database_url)
    from django.db import connection

    counts = {
        name: int(_one("SELECT reltuples::bigint FROM pg_class WHERE relname = %s", (table_,)))
        for name, table_ in [
            ("entitlements", "entitlements_entitlement"),
            ("outbound messages", "entitlements_outboundmessage"),
            ("confirmations", "confirmations_confirmation"),
            ("status events", "entitlements_statusevent"),
        ]
    }
    pages = measure()
    sizes = ", ".join(f"{n:,} {name}" for name, n in counts.items())
    description = (
        f"Measured {time.strftime('%Y-%m-%d')} by `python -m benchmarks.scale.desk` on the "
        f"national-shaped database of `python -m benchmarks.scale --factor 1` ({sizes}; "
        f"PostgreSQL {connection.pg_version // 10000}), through Django's test client as a "
        f"superuser: median of {RUNS} after one warm-up, the whole page rendered."
    )
    section = table(pages, description)
    print(section)
    if args.write_docs:
        text = DOC.read_text()
        if START in text:
            text = text[: text.index(START)] + section + text[text.index(END) + len(END) :]
        else:
            text = text.rstrip() + "\n\n## At national size\n\n" + section + "\n"
        DOC.write_text(text)
        print(f"written to {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
