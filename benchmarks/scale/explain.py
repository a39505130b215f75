"""Capturing and explaining the code's queries: every statement a call runs is explained with
``EXPLAIN (ANALYZE, BUFFERS)`` in a savepoint (rolled back), then run for real; each call is
rolled back at the end, so every query sees the same database. A statement is proportional
when it scans no big table sequentially and reads at most 10 times the rows it returns or
changes, plus 2,000."""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field

# Tables whose whole scan is never acceptable on a hot or periodic path.
BIG_TABLES = (
    "entitlements_entitlement",
    "entitlements_entitlementurlstatus",
    "entitlements_outboundmessage",
    "entitlements_statusevent",
    "confirmations_confirmation",
    "entitlements_enrollmentlookup",
    "entitlements_deliveryattempt",
)
DML = ("SELECT", "UPDATE", "INSERT", "DELETE", "WITH")


@dataclass
class Statement:
    """One statement a query ran, with its plan's figures."""

    sql: str
    top: str
    seq_scans: list[str]
    rows_out: int
    rows_read: int
    ms: float
    planning_ms: float
    jit_ms: float
    verdict: str


@dataclass
class QueryResult:
    """One hot or periodic query of the hub: the statements it ran."""

    name: str
    statements: list[Statement] = field(default_factory=list)
    wall_ms: float = 0.0
    note: str = ""

    @property
    def verdict(self) -> str:
        bad = [s for s in self.statements if s.verdict != "proportional"]
        return "proportional" if not bad else "NOT proportional"


def _walk(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from _walk(child)


SCAN_OF_TABLE = ("Seq Scan", "Parallel Seq Scan")
PASS_THROUGH = {"Limit", "LockRows", "ModifyTable", "Sort", "Incremental Sort", "Gather", "Result"}
AGGREGATES = {"Aggregate", "GroupAggregate", "HashAggregate"}


def _shape(node: dict, depth: int = 4) -> str:
    """The top nodes as ``A > B > C``: a node's name, with its index or table."""
    names = []
    while node is not None and len(names) < depth:
        name = node["Node Type"]
        if node.get("Index Name"):
            name += f" {node['Index Name']}"
        elif node.get("Relation Name"):
            name += f" {node['Relation Name']}"
        names.append(name)
        children = node.get("Plans", [])
        node = children[0] if children else None
    return " > ".join(names)


def _work(node: dict) -> int:
    """The rows a statement returns or changes (for an aggregate: the rows it aggregates)."""
    while node is not None:
        kind = node["Node Type"]
        rows = int(node.get("Actual Rows", 0) * max(node.get("Actual Loops", 1), 1))
        children = [c for c in node.get("Plans", []) if c.get("Parent Relationship") != "InitPlan"]
        if kind in AGGREGATES and children:
            return int(
                children[0].get("Actual Rows", 0) * max(children[0].get("Actual Loops", 1), 1)
            )
        if kind in PASS_THROUGH and children and (kind == "ModifyTable" or rows == 0):
            node = children[0]
            continue
        return rows
    return 0


def analyse(plan: dict, sql: str) -> Statement:
    """The figures of one ``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)`` result."""
    root = plan["Plan"]
    seq, read = [], 0
    for node in _walk(root):
        relation = node.get("Relation Name")
        if relation not in BIG_TABLES:
            continue
        loops = max(node.get("Actual Loops", 1), 1)
        if "Scan" in node["Node Type"] and node["Node Type"] != "Bitmap Index Scan":
            read += int(
                (
                    node.get("Actual Rows", 0)
                    + node.get("Rows Removed by Filter", 0)
                    + node.get("Rows Removed by Index Recheck", 0)
                )
                * loops
            )
        if node["Node Type"] in SCAN_OF_TABLE:
            seq.append(f"{node['Node Type']} {relation}")
    work = _work(root)
    jit = plan.get("JIT", {}).get("Timing", {}).get("Total", 0.0)
    proportional = not seq and read <= 10 * work + 2000
    return Statement(
        sql=" ".join(sql.split()),
        top=_shape(root),
        seq_scans=seq,
        rows_out=work,
        rows_read=read,
        ms=plan.get("Execution Time", 0.0),
        planning_ms=plan.get("Planning Time", 0.0),
        jit_ms=jit,
        verdict="proportional" if proportional else "NOT proportional",
    )


class Explainer:
    """An execute wrapper: explains each DML statement in a savepoint (rolled back), then
    runs it for real."""

    def __init__(self, connection):
        self.connection = connection
        self.statements: list[Statement] = []

    def __call__(self, execute, sql, params, many, context):
        if not many and sql.lstrip().upper().startswith(DML):
            self.statements.append(self.explain(sql, params))
        return execute(sql, params, many, context)

    def explain(self, sql: str, params) -> Statement:
        # The raw psycopg connection: its cursors do not pass through this wrapper.
        raw = self.connection.connection
        with raw.cursor() as cursor:
            cursor.execute("SAVEPOINT scale_explain")
            try:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
                plan = cursor.fetchone()[0]
            finally:
                cursor.execute("ROLLBACK TO SAVEPOINT scale_explain")
                cursor.execute("RELEASE SAVEPOINT scale_explain")
        if isinstance(plan, str):
            plan = json.loads(plan)
        return analyse(plan[0], sql)


class _Rollback(Exception):
    pass


def measure(name: str, call, note: str = "", repeat: int = 2) -> QueryResult:
    """Run ``call`` under the Explainer in a transaction that is rolled back, then
    ``repeat`` times without it (the best is the wall time: the machine may be shared).
    Every run leaves the database as it was."""
    from django.db import connection, transaction

    explainer = Explainer(connection)
    with contextlib.suppress(_Rollback), transaction.atomic():
        with connection.execute_wrapper(explainer):
            call()
        raise _Rollback
    wall = math.inf
    for _ in range(repeat):
        with contextlib.suppress(_Rollback), transaction.atomic():
            started = time.perf_counter()
            call()
            wall = min(wall, (time.perf_counter() - started) * 1000)
            raise _Rollback
    return QueryResult(name, explainer.statements, wall, note)
