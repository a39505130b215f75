"""The hot and periodic queries read by index at scale (docs/performance.md, "Scale").

Builds a small national-shaped database with benchmarks/scale/ (its own database, dropped
afterwards), runs the hub's own selectors and services there, and checks their real plans
(EXPLAIN ANALYZE after ANALYZE): no Seq Scan of a big table in any statement they run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Large enough that the planner prefers an index wherever one serves (an order of 11,000
# among 100,000 entitlements, 250,000 messages; below it a Seq Scan of a table that small is
# rightly cheaper), small enough to build in about a minute.
FACTOR = 0.05

# Statements allowed a Seq Scan, with the reason. The read selector's URL status query joins
# through the order (it is being replaced by one query building JSON per entitlement).
ALLOWED = {
    ("GET of the 50,000 order", "entitlements_entitlementurlstatus"),
}


@pytest.mark.scale
def test_hot_and_periodic_queries_scan_no_big_table(tmp_path):
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/aanspraak")
    name = urlsplit(url).path.lstrip("/") + "_scaletest"
    out = tmp_path / "scale.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.scale",
            "--dsn-db",
            name,
            "--factor",
            str(FACTOR),
            "--json",
            str(out),
        ],
        cwd=ROOT,
        env=dict(os.environ, DATABASE_URL=url),
        check=True,
        capture_output=True,
        timeout=300,
    )
    figures = json.loads(out.read_text())
    assert figures["extra"]["jit"] == "off"
    assert figures["extra"]["rows"]["entitlements_entitlement"] > 90_000
    queries = {q["name"]: q for q in figures["queries"]}
    assert len(queries) >= 12
    offending = []
    for name_, query in queries.items():
        assert query["statements"], f"{name_} ran no statement"
        for statement in query["statements"]:
            for scan in statement["seq_scans"]:
                table = scan.split()[-1]
                if (name_, table) not in ALLOWED:
                    offending.append(f"{name_}: {scan} in {statement['top']}")
    assert not offending, "\n".join(offending)
    # The claims take their batch by index and read no more than they take.
    for claim in ("dispatch claim (recipient with 50,000 due)", "apply claim (pending backlog)"):
        first = queries[claim]["statements"][0]
        assert first["verdict"] == "proportional", first
        assert first["rows_read"] <= first["rows_out"] * 2, first
    sweep = queries["expiry sweep batch"]
    assert all(s["verdict"] == "proportional" for s in sweep["statements"]), sweep
