"""The outbound floor: httpx with keep-alive and a fixed number of requests in flight,
sending recorded request bodies to the loopback party server, as the hub's dispatch does
for one recipient (docs/performance.md, "The scenarios and their floors").

    python -m benchmarks.floor_client --base-url http://127.0.0.1:9100 --requests FILE \
        --concurrency 16

FILE holds JSON lines ``{"method", "path", "body"}``; prints the seconds it took.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--requests", required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with open(args.requests) as handle:
        requests = [json.loads(line) for line in handle if line.strip()]
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    headers = {
        "Authorization": "Bearer bench-token",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    with httpx.Client(base_url=args.base_url, limits=limits, headers=headers) as client:

        def send(item: dict) -> int:
            answer = client.request(item["method"], item["path"], content=item["body"])
            return answer.status_code

        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            statuses = list(pool.map(send, requests))
        elapsed = time.perf_counter() - started
    failed = sum(1 for status in statuses if status >= 300)
    print(json.dumps({"sent": len(statuses), "failed": failed, "seconds": elapsed}))


if __name__ == "__main__":
    main()
