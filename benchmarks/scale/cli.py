"""Scale benchmark: the hub's hot and periodic queries on a national school start.

The command line of ``python -m benchmarks.scale`` (and ``make bench BENCH_ARGS=--scale``):
create the database, build or migrate it, measure, report, and drop the database on every
exit path unless ``--keep``."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
from dataclasses import asdict
from pathlib import Path

from ..databases import drop_database, recreate_database
from .build import Shape, build, migrate_only
from .database import ROOT, server_urls, setup_django
from .queries import run_queries
from .report import DOC, table, write_doc


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Run the scale benchmark with the command line ``argv``; 0 when it ran."""
    # Named as it is run: "__main__.py" would be the default under python -m.
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scale", description=__doc__.split("\n\n")[0]
    )
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
        recreate_database(admin_url, args.dsn_db)
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
