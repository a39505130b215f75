"""The operations endpoints (docs/operations.md, "Health" and "Metrics"): ``GET /healthz``,
``GET /readyz`` and ``GET /metrics``.

Plain Django views, not the chain's API: no OAuth2 token, no rate limit, no API-Version or
body checks (``aanspraak.api.request_checks`` leaves these paths alone), and not in the
OpenAPI document. Their answers name no host and no secret.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from aanspraak.api.errors import json_error
from aanspraak.metrics.scrape import exposition
from aanspraak.selectors.health import is_ready, readiness


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process serves requests. Reads nothing."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when the database, the broker and the migrations are fine; else 503
    with ``"status": "unavailable"`` and what failed."""
    checks = readiness()
    ready = is_ready(checks)
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )


def _authorized(request: HttpRequest) -> bool:
    token = settings.HUB_METRICS_TOKEN
    if not token:
        return True
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Constant time: the comparison tells nothing about how much of a guess was right.
    return hmac.compare_digest(given.strip().encode(), token.encode())


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus text exposition; with ``HUB_METRICS_TOKEN`` set, only for a request
    with ``Authorization: Bearer <that token>`` (401 otherwise)."""
    if not _authorized(request):
        # The hub's StatusResponse, as for every other error (docs/api.md, "Errors").
        response = json_error(401, "GET /metrics needs the metrics bearer token.")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    # The classic text format (0.0.4), which every Prometheus version reads; the hub's names
    # need none of the newer format's escaping.
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
