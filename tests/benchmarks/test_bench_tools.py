"""The benchmark's own tools (benchmarks/): the party server answers, counts and records as
the scenarios rely on, and the floor client sends what was recorded."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest

from benchmarks.stack import PartyServer, cpu_seconds_by_command, cpu_shares
from tests.support.processes import ROOT


@pytest.fixture
def party():
    server = PartyServer({"PATH": "/usr/bin:/bin"}).start(timeout=30)
    yield server
    server.stop()


def _put(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, method="PUT")
    with urllib.request.urlopen(request, timeout=5) as answer:
        return answer.status


def test_party_server_answers_202_counts_per_prefix_and_records_bodies(party):
    urllib.request.urlopen(
        urllib.request.Request(f"{party.url}/_record", method="POST"), timeout=5
    ).close()
    assert _put(f"{party.url}/registry/entitlements", b'{"a": 1}') == 202
    assert _put(f"{party.url}/portal/entitlements", b'{"b": 2}') == 202
    assert _put(f"{party.url}/portal/entitlements", b'{"c": 3}') == 202
    assert party.counts() == {"/registry": 1, "/portal": 2}

    with urllib.request.urlopen(f"{party.url}/_recorded", timeout=5) as answer:
        recorded = [json.loads(line) for line in answer.read().splitlines()]
    assert [(r["method"], r["path"], r["body"]) for r in recorded] == [
        ("PUT", "/registry/entitlements", '{"a": 1}'),
        ("PUT", "/portal/entitlements", '{"b": 2}'),
        ("PUT", "/portal/entitlements", '{"c": 3}'),
    ]
    party.reset()
    assert party.counts() == {}


def test_party_server_issues_a_token(party):
    request = urllib.request.Request(f"{party.url}/token", data=b"grant_type=x", method="POST")
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert json.loads(answer.read())["token_type"] == "Bearer"


def test_floor_client_sends_every_recorded_request_with_keep_alive(party, tmp_path):
    requests = tmp_path / "requests.jsonl"
    lines = [
        json.dumps({"method": "PUT", "path": "/registry/entitlements", "body": f'{{"n": {i}}}'})
        for i in range(200)
    ]
    requests.write_text("\n".join(lines) + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.floor_client", "--base-url", party.url,
         "--requests", str(requests), "--concurrency", "8"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    report = json.loads(done.stdout)
    assert report["sent"] == 200 and report["failed"] == 0
    assert party.counts() == {"/registry": 200}


def test_cpu_shares_rank_the_commands_that_used_the_cpu():
    before = {(10, "postgres"): 1.0, (11, "gunicorn"): 2.0, (12, "postgres"): 5.0}
    # pid 12 ended (missed), pid 13 started in between (counts whole)
    after = {(10, "postgres"): 3.0, (11, "gunicorn"): 3.0, (13, "postgres"): 1.0,
             (14, "wrk"): 1.0}  # fmt: skip
    assert cpu_shares(before, after) == "postgres 60 %, gunicorn 20 %, wrk 20 %"
    assert cpu_seconds_by_command()  # this machine's processes can be read


def test_paced_client_keeps_its_connections_alive_and_counts_every_answer(party):
    import asyncio

    from benchmarks.loadgen import http_request, paced_requests

    host, port = "127.0.0.1", party.port
    requests = [http_request(host, port, "/hub/confirm", "t", b'{"n": %d}' % i) for i in range(300)]
    answers = {}
    errors, took = asyncio.run(
        paced_requests(host, port, requests, 600, lambda i, s, _at: answers.update({i: s}), 8)
    )
    assert errors == 0 and sorted(answers) == list(range(300))
    assert set(answers.values()) == {202}
    assert party.counts() == {"/hub": 300}
    assert took >= 299 / 600  # paced, not as fast as possible


def test_paced_client_reads_whole_answers_only_and_leaves_the_next_one():
    from benchmarks.loadgen import _take_answer

    buffer = bytearray(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\nHTTP/1.1 400 Bad")
    assert _take_answer(buffer) == 202
    assert _take_answer(buffer) is None  # the next answer is not complete yet
    buffer += b" Request\r\ncontent-length: 4\r\n\r\n{}\r\n"
    assert _take_answer(buffer) == 400 and buffer == b""
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    buffer += chunked[:-2]
    assert _take_answer(buffer) is None
    buffer += chunked[-2:]
    assert _take_answer(buffer) == 200 and buffer == b""


@pytest.mark.django_db(transaction=True)
def test_middleware_cost_puts_real_confirmations_through_each_variant(registry):
    """benchmarks/middleware_cost.py: every request of every variant is a stored 202."""
    from benchmarks.middleware_cost import measure
    from confirmations.models import Confirmation
    from tests.support.factories import make_order

    order = make_order(registry, 2)
    times = measure(rounds=2, per_round=3, order_pk=order.pk)
    assert set(times) == {"the hub's middleware", "without the admin's four", "none"}
    assert all(len(values) == 2 and min(values) > 0 for values in times.values())
    assert Confirmation.objects.filter(state="pending").count() == 3 * (2 + 1) * 3  # + warm-up


def test_p5_figures_are_the_median_of_the_runs_and_losses_their_sum():
    """benchmarks/scenarios/confirmations.py: P5 reports the median run, never one run, and
    a loss in any run shows."""
    from benchmarks.loadgen import latencies_to_result
    from benchmarks.scenarios.bench import Bench
    from benchmarks.scenarios.confirmations import P5Run, p5_summary

    def run(rate: float, p95_ms: float, lost: int = 0) -> P5Run:
        visible = latencies_to_result([p95_ms] * 100, 60.0, 0)
        return P5Run(
            visible=visible, answer_ms=(10.0, 200.0), sent=30_000, answered=30_000,
            lost=lost, unseen=0, errors=0, took=30_000 / rate, orders_read=300,
            bytes_read=180_000_000, apply_lag_ms=(100.0, 240.0), cpu="gunicorn 60 %",
            machine="busy 90 %", hub_ms=2.5 + rate / 1000, observer_ms=0.3,
        )  # fmt: skip

    bench = Bench(env={}, dsn="", party=None, hub=None, floor=None, tokens={}, parties={})
    figures = p5_summary(bench, [run(401, 1200), run(499, 600, lost=2), run(496, 700)], 500)
    by_name = {f.figure: f for f in figures}
    assert by_name["sent per second"].hub == pytest.approx(496)
    assert by_name["sent per second"].ok  # ≥ 475: two of three runs kept the rate
    assert by_name["202 to visible, p95"].hub == 700
    assert by_name["202s never applied (lost)"].hub == 2
    assert not by_name["202s never applied (lost)"].ok
    assert bench.distributions["P5 202 to visible in GET"][-1][1] == 700  # the median run
    assert "401/s sent" in bench.notes[0] and "hub CPU 2.90 ms" in bench.notes[0]
