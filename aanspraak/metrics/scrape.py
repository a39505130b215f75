"""What ``GET /metrics`` answers: the counters and histograms every process of this machine
wrote (prometheus_client's ``MultiProcessCollector`` over ``PROMETHEUS_MULTIPROC_DIR``) and
the gauges read from the database at scrape time.

The apps register their database gauges here (``register``, from their ``AppConfig.ready``):
this module is the lowest layer and may not import their models. Each gauge function runs a
few cheap indexed queries; all of them share one transaction with a statement timeout
(``HUB_HEALTH_TIMEOUT``), so a slow database makes a scrape fail fast, never hang. When the
database cannot answer, the scrape still serves every process's counters, with
``aanspraak_scrape_database_up`` 0 (docs/operations.md, "Metrics").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)


@dataclass
class ScrapeGauge:
    """One gauge family read at scrape time: its samples as (label values, value)."""

    name: str
    documentation: str
    labels: tuple[str, ...] = ()
    samples: list[tuple[tuple[str, ...], float]] = field(default_factory=list)


GaugeSource = Callable[[], Iterable[ScrapeGauge]]
_sources: list[GaugeSource] = []


def register(source: GaugeSource) -> None:
    """Add a function whose gauges every scrape reads from the database (once per source)."""
    if source not in _sources:
        _sources.append(source)


def _statement_timeout() -> None:
    if connection.vendor == "postgresql":
        milliseconds = max(1, int(settings.HUB_HEALTH_TIMEOUT * 1000))
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = %s", [milliseconds])


def database_gauges() -> tuple[list[ScrapeGauge], bool]:
    """Every registered source's gauges, read in one transaction; and whether the database
    answered (an error leaves the list empty)."""
    gauges: list[ScrapeGauge] = []
    try:
        with transaction.atomic():
            _statement_timeout()
            for source in _sources:
                gauges.extend(source())
    except DatabaseError as exc:
        log.warning("metrics: the database gauges could not be read: %s", type(exc).__name__)
        return [], False
    return gauges, True


class _DatabaseCollector:
    def collect(self):
        gauges, answered = database_gauges()
        up = GaugeMetricFamily(
            "aanspraak_scrape_database_up",
            "1 when this scrape could read the database gauges, 0 when not.",
        )
        up.add_metric([], 1.0 if answered else 0.0)
        yield up
        for gauge in gauges:
            family = GaugeMetricFamily(gauge.name, gauge.documentation, labels=gauge.labels)
            for label_values, value in gauge.samples:
                family.add_metric(list(label_values), value)
            yield family


def exposition() -> bytes:
    """The text exposition of every process's metrics and the database gauges."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(_DatabaseCollector())
    return generate_latest(registry)
