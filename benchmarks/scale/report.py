"""The report: the Markdown section of docs/performance.md (every statement's plan and
verdict, every query's wall time), printed and, with ``--write-docs``, written between its
markers."""

from __future__ import annotations

import os
import platform
import time

from .build import Shape
from .database import ROOT
from .explain import QueryResult

DOC = ROOT / "docs" / "performance.md"
START = "<!-- benchmark:scale:start -->"
END = "<!-- benchmark:scale:end -->"


def table(results: list[QueryResult], extra: dict, shape: Shape, steps: dict) -> str:
    """The Markdown section of docs/performance.md."""
    rows = extra["rows"]
    lines = [
        START,
        f"## Scale: the hot and periodic queries at factor {shape.factor:g}",
        "",
        f"Measured by `python -m benchmarks.scale --factor {shape.factor:g}` "
        f"({time.strftime('%Y-%m-%d')}, PostgreSQL, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, jit={extra['jit']}): "
        f"{shape.orders:,} orders ({shape.big_orders} of {shape.big_size:,}), "
        f"{rows['entitlements_entitlement']:,} entitlements, "
        f"{rows['entitlements_entitlementurlstatus']:,} URL statuses, "
        f"{rows['entitlements_outboundmessage']:,} outbound messages, "
        f"{rows['confirmations_confirmation']:,} confirmations, "
        f"{rows['entitlements_statusevent']:,} status events; built in "
        f"{sum(steps.values()):.0f} s. Each statement the code runs is explained with "
        "`EXPLAIN (ANALYZE, BUFFERS)`; *read* counts the rows its scans of the big tables "
        "visited, *rows* the rows it returns or changes (for an aggregate, the rows it "
        "aggregates). Proportional: no Seq Scan of a big table and read ≤ 10 times rows + 2,000.",
        "",
        "| query | statement: plan (top nodes) | Seq Scan of a big table | rows | read | ms "
        "| JIT ms | verdict |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for result in results:
        for i, s in enumerate(result.statements):
            label = result.name if i == 0 else ""
            lines.append(
                f"| {label} | {s.top} | {', '.join(s.seq_scans) or '-'} | {s.rows_out:,} | "
                f"{s.rows_read:,} | {s.ms:.1f} | {s.jit_ms:.0f} | {s.verdict} |"
            )
    lines += [
        "",
        "| query | wall time (ms, without EXPLAIN) | verdict |",
        "|---|---:|---|",
    ]
    for result in results:
        lines.append(f"| {result.name} | {result.wall_ms:.1f} | {result.verdict} |")
    ratio = extra["get_over_floor"]
    lines += [
        "",
        f"GET of the {shape.big_size:,} order (selector and JSON streaming, in process): "
        f"{extra['get_ms']:.0f} ms; the same order's `json_agg` floor: "
        f"{extra['floor_ms']:.0f} ms ({extra['floor_bytes'] / 1e6:.1f} MB); ratio "
        f"{ratio:.2f}.",
        END,
    ]
    return "\n".join(lines) + "\n"


def write_doc(section: str) -> None:
    """Replace the scale section between its markers (appended when absent)."""
    text = DOC.read_text(encoding="utf-8")
    if START in text and END in text:
        before = text.split(START, 1)[0]
        after = text.split(END, 1)[1]
        text = before + section.rstrip("\n") + after
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOC.write_text(text, encoding="utf-8")
