"""``make bench``: the hub's hot paths against their floors, measured in the same run.

Creates a database of its own (``<DATABASE_URL's name>_bench``, dropped at the end), starts
the hub as production runs it (gunicorn with ``config/gunicorn.conf.py``, Celery workers and
beat, ``HUB_ENV=production``), the web floor under the same gunicorn configuration and a
loopback server playing the registry, the portal and the seller; runs the scenarios P1–P6
(docs/performance.md says what each is), prints one table, writes it with the machine's
description into docs/performance.md and draws the latency distributions into
docs/performance-latency.png.

    python -m benchmarks.run                 # every scenario, 3 runs each (about 20 minutes)
    python -m benchmarks.run --only P1,P2    # some of them
    python -m benchmarks.run --quick         # shorter loads and smaller orders, 1 run
    python -m benchmarks.run --no-docs       # print only
    python -m benchmarks.run --scale [--factor 0.05] [--write-docs]   # P7, benchmarks/scale/
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "performance.md"
PLOT = ROOT / "docs" / "performance-latency.png"
START, END = "<!-- benchmark:make-bench:start -->", "<!-- benchmark:make-bench:end -->"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/aanspraak"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/12"


def main() -> int:
    if "--scale" in sys.argv[1:]:
        # P7: the national school start built by SQL and the hub's queries explained.
        from benchmarks import scale

        rest = [arg for arg in sys.argv[1:] if arg != "--scale"]
        if not any(arg.startswith("--dsn-db") for arg in rest):
            rest += ["--dsn-db", "aanspraak_scale_bench"]
        return scale.main(rest)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated scenarios, e.g. P1,P2")
    parser.add_argument("--runs", type=int, default=None, help="runs per scenario (3)")
    parser.add_argument("--quick", action="store_true", help="short loads, small orders")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    from benchmarks import databases, scenarios, stack

    url = databases.postgres_url(DEFAULT_DATABASE_URL)
    if url is None:
        return 2
    broker = os.environ.get("BENCH_BROKER_URL", DEFAULT_BROKER_URL)
    wanted = [s.strip().upper() for s in args.only.split(",") if s.strip()] or list(
        scenarios.SCENARIOS
    )
    runs = args.runs or (1 if args.quick else 3)
    from benchmarks.loadgen import require_wrk

    require_wrk()

    bench_url, admin_url, name = databases.bench_database_url(url)
    stack.install_exit_handlers()
    databases.recreate_database(admin_url, name)
    stack.on_exit(lambda: databases.drop_database(admin_url, name))
    env = stack.production_env(bench_url, broker)
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    figures: list = []
    bench = None
    description = ""
    try:
        import django

        django.setup()
        stack.on_exit(_close_django_connections)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--run-syncdb", "--verbosity", "0"],
            cwd=ROOT,
            env={**env, "DJANGO_SETTINGS_MODULE": "benchmarks.floor_web.settings"},
            check=True,
        )
        import redis

        redis.Redis.from_url(broker).flushdb()
        party = stack.PartyServer(env).start()
        _load_registry(scenarios.registry_text(party.url))
        hub = stack.WebServer("hub", "config.wsgi", env).start()
        floor_env = {**env, "DJANGO_SETTINGS_MODULE": "benchmarks.floor_web.settings"}
        floor = stack.WebServer("floor", "benchmarks.floor_web.wsgi", floor_env).start()
        from aanspraak.models import Party

        bench = scenarios.Bench(
            env=env,
            dsn=bench_url,
            party=party,
            hub=hub,
            floor=floor,
            tokens=scenarios.fetch_tokens(hub.url),
            parties=dict(Party.objects.values_list("name", "pk")),
            runs=runs,
            quick=args.quick,
        )
        figures = run_scenarios(bench, wanted)
        description = machine()  # before the database is dropped
    except KeyboardInterrupt:
        print("interrupted: stopping everything", file=sys.stderr)
        return 130
    finally:
        stack.stop_all()
    table = render_table(figures)
    print(table)
    for note in bench.notes if bench else []:
        print(note)
    if not args.no_docs and figures and bench:
        plot(bench.distributions)
        write_docs(table, bench.notes, wanted, runs, args.quick, description)
    return 0 if all(f.ok for f in figures) else 1


def run_scenarios(bench, wanted: list[str]) -> list:
    from benchmarks import scenarios

    figures = []
    order_id, pk = None, None
    if {"P1", "P2", "SCALE-OUT"} & set(wanted):
        order_id = "DO-P1-10000"
        pk = scenarios.order_in_process(order_id, 2_500 if bench.quick else 10_000)
    steps = {
        "P1": lambda: scenarios.p1_read(bench, pk, order_id),
        "P2": lambda: scenarios.p2_confirmations(bench, pk),
        "SCALE-OUT": lambda: scenarios.scale_out_web(bench, pk),
        "P6": lambda: scenarios.p6_dispatch(bench),
        "P3": lambda: scenarios.p3_apply(bench),
        "P5": lambda: scenarios.p5_end_to_end(bench),
        "P4": lambda: scenarios.p4_intake(bench),
    }
    for name in scenarios.SCENARIOS:
        if name not in wanted:
            continue
        if name == "P6" and pk is not None:
            scenarios.settle_messages(bench, pk)  # P1/P2's order is not P6's work
        print(f"--- {name}", flush=True)
        try:
            rows = steps[name]()
        except Exception as exc:
            traceback.print_exc()
            reason = f"failed: {exc}".splitlines()[0][:80]
            rows = [scenarios.Figure(name, reason, float("nan"), None, "", "runs", False)]
        for row in rows:
            print(f"    {_row(row)}", flush=True)
        figures += rows
    return figures


def _load_registry(text: str) -> None:
    import yaml

    from aanspraak.services.registry import load_registry

    load_registry(yaml.safe_load(text))


def _close_django_connections() -> None:
    from django.db import connections

    connections.close_all()


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "–"
    if value != value:  # NaN
        return "n/a"
    if unit == "s":
        return f"{value:.2f} s"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:.0f}"
    return f"{text} {unit}".strip()


def _row(figure) -> str:
    ratio = figure.ratio
    return " | ".join(
        [
            figure.scenario,
            figure.figure,
            _number(figure.hub, figure.unit),
            _number(figure.floor, figure.unit),
            f"{ratio:.2f}×" if ratio is not None else "–",
            figure.target,
            "met" if figure.ok else "NOT MET",
        ]
    )


def render_table(figures: list) -> str:
    lines = [
        "| scenario | figure | hub | floor | ratio | target | verdict |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    lines += [f"| {_row(f)} |" for f in figures]
    return "\n".join(lines)


def machine() -> str:
    import psycopg

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB memory"
    except (OSError, ValueError, IndexError):
        pass
    load = os.getloadavg()
    with psycopg.connect(os.environ["DATABASE_URL"], connect_timeout=5) as conn:
        server = conn.info.server_version
    return (
        f"{platform.machine()}, {os.cpu_count()} cores ({cpu}){memory}; Linux "
        f"{platform.release()}; Python {platform.python_version()}; PostgreSQL "
        f"{server // 10000}.{server % 10000}; load average at the end of the run "
        f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}"
    )


def write_docs(
    table: str, notes: list[str], wanted: list[str], runs: int, quick: bool, description: str
) -> None:
    narrowed = wanted != list(scenarios_order())
    command = "make bench" + (f" BENCH_ARGS='--only {','.join(wanted)}'" if narrowed else "")
    text = "\n".join(
        [
            START,
            f"Measured {dt.date.today().isoformat()} by `{command}`"
            + (" (quick mode: NOT the reference figures)" if quick else "")
            + f", median of {runs} run{'s' if runs > 1 else ''} per figure, on {description}.",
            "",
            table,
            "",
            *[f"- {note}" for note in notes],
            "",
            f"![Latency distributions]({PLOT.name})",
            END,
        ]
    )
    current = DOCS.read_text() if DOCS.exists() else "# Performance\n"
    if START in current and END in current:
        before, rest = current.split(START, 1)
        _, after = rest.split(END, 1)
        current = before + text + after
    else:
        current = current.rstrip("\n") + "\n\n" + text + "\n"
    DOCS.write_text(current)
    print(f"wrote {DOCS.relative_to(ROOT)} and {PLOT.relative_to(ROOT)}")


def scenarios_order() -> tuple[str, ...]:
    from benchmarks.scenarios import SCENARIOS

    return SCENARIOS


def plot(distributions: dict[str, list[tuple[float, float]]]) -> None:
    """Latency against percentile for each measured distribution, hub beside its floor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = {}
    for label, points in distributions.items():
        groups.setdefault(label.split()[0], []).append((label, points))
    if not groups:
        return
    figure, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 4), squeeze=False)
    for axis, (scenario, series) in zip(axes[0], sorted(groups.items()), strict=True):
        for label, points in series:
            axis.plot([p for p, _ in points], [v for _, v in points], label=label)
        axis.set_title(scenario)
        axis.set_xlabel("percentile")
        axis.set_ylabel("latency (ms)")
        axis.set_yscale("log")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(PLOT, dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    raise SystemExit(main())
