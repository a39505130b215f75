"""What every scenario shares: the running :class:`Bench` (processes, parties, tokens, the
figures' collection) and the :class:`Figure` rows a scenario returns, with the helpers that
reduce runs to a figure and read the bench's state."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import psycopg

from .. import loadgen
from ..stack import PartyServer, WebServer


@dataclass
class Figure:
    """One row of the report. ``ratio`` is hub / floor; ``target`` says which way is good."""

    scenario: str
    figure: str
    hub: float
    floor: float | None
    unit: str
    target: str
    ok: bool

    @property
    def ratio(self) -> float | None:
        if self.floor in (None, 0):
            return None
        return self.hub / self.floor


@dataclass
class Bench:
    """Everything the scenarios share: the environment, the processes, the parties."""

    env: dict[str, str]
    dsn: str
    party: PartyServer
    hub: WebServer
    floor: WebServer
    tokens: dict[str, str]
    parties: dict[str, int]
    runs: int = 3
    quick: bool = False
    distributions: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def sql(self, query: str, params: tuple | dict = ()) -> list[tuple]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def seconds(self, full: float) -> float:
        """A load duration, shortened in ``--quick`` mode."""
        return max(5.0, full / 4) if self.quick else full

    def restart_hub(self) -> None:
        """A fresh hub (new gunicorn processes, so peak-memory figures start from zero)."""
        self.hub.stop()
        self.hub = WebServer("hub", "config.wsgi", self.env).start()


def median(values: list[float]) -> float:
    """The median of the runs' values (NaN when there are none)."""
    return statistics.median(values) if values else float("nan")


def median_run(runs: list[loadgen.LoadResult], p: float) -> loadgen.LoadResult:
    """The run whose ``p`` percentile is the median one (for the plot)."""
    ordered = sorted(runs, key=lambda r: r.percentile(p))
    return ordered[len(ordered) // 2]


def purge_queues(bench: Bench) -> None:
    """Drop wake-ups queued while no worker ran (their work is settled or re-created)."""
    import redis

    redis.Redis.from_url(bench.env["CELERY_BROKER_URL"]).flushdb()


def pending_confirmations(bench: Bench) -> int:
    """How many confirmations no worker has decided yet."""
    rows = bench.sql("SELECT count(*) FROM confirmations_confirmation WHERE state = 'pending'")
    return rows[0][0]
