"""Metrics across processes (docs/operations.md, "Metrics"): the hub under gunicorn with two
workers on loopback, sharing one PROMETHEUS_MULTIPROC_DIR; GET /metrics, answered by either
worker, sums what both counted."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.mmap_dict import MmapedDict

from tests.support.metrics import parse, value
from tests.support.processes import HubServer, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TOKEN = "e2e-metrics-token-0123456789"


def get(url: str, token: str | None = None) -> bytes:
    request = urllib.request.Request(url, headers={"Connection": "close"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def healthz_by_process(directory: Path) -> dict[str, float]:
    """Each worker's own count of GET /healthz answered 200, read from its own file."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        for key, count, _timestamp, _pos in MmapedDict.read_all_values_from_file(str(path)):
            name, _sample, labels, _help = json.loads(key)
            if name == "aanspraak_http_requests" and labels == {
                "method": "GET", "route": "healthz", "status": "200",
            }:  # fmt: skip
                counts[path.stem] = counts.get(path.stem, 0) + count
    return counts


def test_two_gunicorn_workers_are_summed(worker_env, tmp_path):
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = {**worker_env, "PROMETHEUS_MULTIPROC_DIR": str(directory), "HUB_METRICS_TOKEN": TOKEN}
    server = HubServer(env, tmp_path, workers=2)
    server.start()
    try:
        sent = 0

        def both_workers_answered() -> bool:
            nonlocal sent
            # New connections side by side: the kernel hands them to either worker.
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda _: get(f"{server.url}/healthz"), range(16)))
            sent += len(answers)
            assert all(json.loads(a) == {"status": "ok"} for a in answers)
            return len([c for c in healthz_by_process(directory).values() if c]) >= 2

        wait_for(both_workers_answered, 60, what="both gunicorn workers to answer")
        per_process = healthz_by_process(directory)
        assert sum(per_process.values()) == sent

        text = get(f"{server.url}/metrics", TOKEN).decode()
        samples, _ = parse(text)
        total = value(
            samples, "aanspraak_http_requests_total", method="GET", route="healthz", status="200"
        )
        assert total == sent  # both processes' counts, summed
        count = "aanspraak_http_request_duration_seconds_count"
        assert value(samples, count, route="healthz") == sent
        # The database gauges come from the test database through the server.
        assert value(samples, "aanspraak_scrape_database_up") == 1.0
        assert value(samples, "aanspraak_confirmations_pending") == 0.0
        # Without the token, no figures.
        with pytest.raises(urllib.error.HTTPError) as refused:
            get(f"{server.url}/metrics")
        assert refused.value.code == 401
    finally:
        server.stop()
