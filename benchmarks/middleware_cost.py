"""What Django's middleware costs a confirmation PUT, measured in-process:
``python -m benchmarks.middleware_cost`` (docs/performance.md, P2, change 11).

The WSGI handler is called directly with ``PUT /entitlements/confirmations`` requests (a
unique receive id each, a licence registry's token, the body of a real Entitlement request),
once with the hub's ``MIDDLEWARE``, once without the four the admin alone needs (sessions,
CSRF, authentication, messages) and once with none. The variants run in alternating rounds;
the figure is the median of the differences between adjacent rounds, in CPU µs of this
process per request: on a machine whose speed drifts by tens of percent within a minute,
adjacent rounds share the drift. Each request still does its INSERT (the database's CPU is
not counted). A database of its own (``<name>_mwcost``), dropped at the end, and the
benchmark's Redis database (``BENCH_BROKER_URL``, as ``make bench``: flushed). Not part of
``make bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid

ADMIN_ONLY = (
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "aanspraak.middleware.AuthenticationMiddleware",
    "aanspraak.middleware.AdminMessageMiddleware",
)


def _confirmation(order_pk: int) -> tuple[str, dict]:
    """A licence registry's token and a confirmation body for the order's first request."""
    from aanspraak.models import Client
    from benchmarks.tokens import issue_token
    from entitlements.models import OutboundMessage

    token = issue_token(Client.objects.get(client_id="noord-lr"))
    message = (
        OutboundMessage.objects.filter(
            entitlement__delivery_order_id=order_pk, recipient__name="Uitgeverij Noord"
        )
        .select_related("entitlement")
        .first()
    )
    body = {
        "entitlementReferenceId": str(message.reference_id),
        "entitlementId": str(message.entitlement.entitlement_id),
        "productId": "9789001000011",
        "processedTimestamp": "2026-09-01T08:00:00Z",
        "newEntitlementStatus": "entitled",
    }
    return token, body


def measure(rounds: int, per_round: int, order_pk: int) -> dict[str, list[float]]:
    """CPU µs per request of each variant, one figure per round."""
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import RequestFactory, override_settings

    token, body = _confirmation(order_pk)
    full = list(settings.MIDDLEWARE)
    variants = {
        "the hub's middleware": full,
        "without the admin's four": [m for m in full if m not in ADMIN_ONLY],
        "none": [],
    }
    handlers = {}
    for name, middleware in variants.items():
        with override_settings(MIDDLEWARE=middleware):
            handlers[name] = WSGIHandler()

    def environ() -> dict:
        raw = json.dumps({**body, "entitlementReceiveId": uuid.uuid4().hex}).encode()
        return (
            RequestFactory()
            .generic(
                "PUT",
                "/entitlements/confirmations",
                raw,
                "application/json",
                HTTP_AUTHORIZATION=f"Bearer {token}",
                HTTP_HOST="127.0.0.1:8000",
            )
            .environ
        )

    def start_response(status, headers, exc_info=None):
        if not status.startswith("202"):
            raise RuntimeError(f"the hub answered {status}")

    times: dict[str, list[float]] = {name: [] for name in variants}
    # Round 0 warms every variant up (the token cache, the prepared INSERT) and is not kept.
    for round_number in range(rounds + 1):
        for name, handler in handlers.items():
            requests = [environ() for _ in range(per_round)]
            started = time.process_time()
            for request in requests:
                answer = handler(request, start_response)
                b"".join(answer)
                answer.close()
            if round_number:
                times[name].append((time.process_time() - started) / per_round * 1e6)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=24)
    parser.add_argument("--per-round", type=int, default=300)
    args = parser.parse_args()
    from benchmarks.databases import (
        bench_database_url,
        drop_database,
        postgres_url,
        recreate_database,
    )
    from benchmarks.run import DEFAULT_BROKER_URL

    url = postgres_url()
    if url is None:
        return 2

    bench_url, admin_url, name = bench_database_url(url, "_mwcost")
    broker = os.environ.get("BENCH_BROKER_URL", DEFAULT_BROKER_URL)
    recreate_database(admin_url, name)
    try:
        os.environ["DATABASE_URL"] = bench_url
        # Redis as in production (the token cache, the rate limit, the wake-ups), on the
        # benchmark's own database: the wake-ups it enqueues are flushed at the end.
        os.environ["CELERY_BROKER_URL"] = broker
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        # The one log line per request goes where production's goes, not to a terminal.
        os.environ.setdefault("HUB_LOG_LEVEL", "INFO")
        import django

        django.setup()

        from django.core.management import call_command
        from django.db import connections

        from benchmarks.apply_workload import make_order
        from benchmarks.logs import log_to_devnull

        log_to_devnull()
        call_command("migrate", verbosity=0)
        order_pk = make_order(10)
        times = measure(args.rounds, args.per_round, order_pk)
        connections.close_all()
    finally:
        drop_database(admin_url, name)
        import redis

        redis.Redis.from_url(broker).flushdb()
    full = times["the hub's middleware"]
    print(f"{args.rounds} rounds of {args.per_round} confirmation PUTs, CPU µs per request:")
    for variant, values in times.items():
        saved = statistics.median(a - b for a, b in zip(full, values, strict=True))
        print(
            f"  {variant:26} median {statistics.median(values):6.0f}; "
            f"the hub's middleware costs {saved:5.0f} more (paired median)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
